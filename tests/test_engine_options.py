"""Engine.run's options that pass through to another step: a wrong key is one line naming it."""

from __future__ import annotations

import pytest
from datasets import Dataset

from hf_vitcurate.engine import EchoBackend, Engine
from hf_vitcurate.errors import ConfigError


def test_an_unknown_collect_option_is_a_config_error_naming_it_and_the_accepted_ones():
    engine = Engine(EchoBackend(lambda r: "no"), max_attempts=1)
    rows = Dataset.from_dict({"id": ["a"]})
    with pytest.raises(ConfigError) as err:
        engine.run(rows, seed_images=rows, per_domain=1, collect_options={"bad": 1, "index_path": "x"})
    message = str(err.value)
    assert "'bad'" in message and "index_path" in message and "nprobe" in message and "\n" not in message
    assert "'index_path'" not in message.split(";")[0]  # a known key is not blamed
