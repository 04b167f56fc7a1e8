"""What a user hands the Hub side that is wrong is one line naming it, never a bare KeyError or a JSON traceback.

A truncated ``curation.json``, a card's source list without names, a section without its
config, a plot path that is not there, and a publish from the Space to a repo id the Hub
would refuse (checked before anything is written or sent).
"""

from __future__ import annotations

import pytest
from datasets import Dataset, DatasetDict

from hf_vitcurate.errors import ConfigError, FormatError, NotFoundError
from hf_vitcurate.hub import card, manifest, plots


def test_a_truncated_manifest_names_its_file(tmp_path):
    path = tmp_path / "curation.json"
    path.write_text('{"format": 1, "configs": {')
    with pytest.raises(FormatError, match=f"^{path}: not valid JSON .*; publish again to rewrite it$") as err:
        manifest.load_manifest(str(tmp_path))
    assert "\n" not in str(err.value)
    with pytest.raises(FormatError):
        manifest.would_change(DatasetDict({"train": Dataset.from_dict({"id": ["a"]})}), str(path))


def test_card_inputs_without_their_names_are_one_line(tmp_path):
    described = manifest.describe({"default": DatasetDict({"train": Dataset.from_dict({"id": ["a"], "source": ["s"]})})})
    with pytest.raises(ConfigError, match=r"^card_data\['sources'\]: a list of sources needs a 'name' in each"):
        card._sources({"sources": [{"license": "mit"}]}, described)
    assert card._sources({"sources": [{"name": "s", "license": "mit"}]}, described)[0]["license"] == "mit"
    with pytest.raises(ConfigError, match=r"^card_data\['sections'\]: each section needs a 'config'"):
        card.config_section({"title": "OCR"}, [])


def test_a_plot_path_that_is_not_there_says_so(tmp_path):
    with pytest.raises(NotFoundError, match="^plot .*missing.png: no such PNG file$"):
        plots.save_figure(str(tmp_path / "missing.png"), str(tmp_path / "out.png"))
    with pytest.raises(ConfigError, match="got a list$"):
        plots.save_figure([1, 2], str(tmp_path / "out.png"))


@pytest.mark.parametrize("repo_id", ["bad id", "noowner", "a/b/c", ""])
def test_the_space_refuses_a_repo_id_the_hub_would_refuse_before_writing(repo_id, tmp_path):
    import os

    from hf_vitcurate.space import Limits, actions

    limits = Limits(work_dir=str(tmp_path / "space"))
    session = actions.Session(name="one", tagged=Dataset.from_dict({"id": ["a"]}))
    with pytest.raises(ConfigError, match=f"^{repo_id!r} is not a Hub repo id .*; write it as org/name$"):
        actions.publish_to_hub(session, repo_id, token="hf_x", limits=limits)
    assert not os.path.isdir(os.path.join(limits.work_dir, "publish"))
