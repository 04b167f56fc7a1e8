"""MQ (Meta Quality, REVO-LION) as an ``evaluate`` metric, computed offline by hf_vitcurate.

Load it from its path inside the package (no Hub access)::

    >>> import evaluate
    >>> from hf_vitcurate.metrics import mq_metric_path
    >>> mq = evaluate.load(mq_metric_path())                                   # doctest: +SKIP
    >>> mq.compute(predictions=["a red circle"], references=[["a red circle", "a circle"]])  # doctest: +SKIP
    {'mq': ..., 'bleu_1': ..., ..., 'rouge_l': ...}

``compute`` options: ``variant`` (``"C1"`` default, ``"C2"``, ``"C3"``), ``reduce``
(``"mean"`` of per-sample MQ, default; ``"sum"`` of corpus-level scores, the
magnitudes of REVO-LION's Table 6, arXiv:2310.06594), ``per_sample`` (also return ``mq_per_sample`` and each component's
per-sample list). Component values are dataset means (BLEU: mean of per-sample scores
with ``reduce="mean"``, corpus BLEU with ``reduce="sum"``).
"""

import datasets
import evaluate
import numpy as np

from hf_vitcurate.metrics.mq import COMPONENTS, check_variant, combine, default_scorer
from hf_vitcurate.metrics.bleu import corpus_bleu
from hf_vitcurate.errors import ConfigError

_CITATION = """\
@article{liao2023revolion,
  title={On the Evaluation and Refinement of Vision-Language Instruction Tuning Datasets},
  author={Liao, Ning and Zhang, Shaofeng and Xia, Renqiu and others},
  year={2023}
}
"""

_DESCRIPTION = """\
Meta Quality (MQ): the mean of BLEU-1..4 (pycocoevalcap), METEOR (nltk) and ROUGE-L
(pycocoevalcap) of a prediction against its reference(s), on COCO-style tokens.
Variants C2 = mean(B@4, METEOR, ROUGE-L) and C3 = mean(METEOR, ROUGE-L).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of strings.
    references: list of strings, or list of lists of strings (several references).
    variant: "C1" (default), "C2" or "C3".
    reduce: "mean" (default) or "sum".
    per_sample: also return per-sample lists (default False).
Returns:
    mq: MQ^D; bleu_1..bleu_4, meteor, rouge_l: dataset-level components.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MqMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.List(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Value("string")}),
            ],
            reference_urls=["https://github.com/tylin/coco-caption"],
        )

    def _compute(self, predictions, references, variant="C1", reduce="mean", per_sample=False):
        scorer = default_scorer()
        if reduce not in ("mean", "sum"):
            raise ConfigError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
        comps = scorer.components(predictions, references, with_counts=reduce == "sum")
        per = combine(comps, variant=variant)
        if reduce == "mean":
            summary = {k: float(np.mean(comps[k])) for k in COMPONENTS}
            mq = float(np.mean(per))
        else:
            summary = dict(zip(("bleu_1", "bleu_2", "bleu_3", "bleu_4"), map(float, corpus_bleu(comps["_counts"]))))
            summary["meteor"] = float(np.mean(comps["meteor"]))
            summary["rouge_l"] = float(np.mean(comps["rouge_l"]))
            mq = float(sum(summary[name] for name in check_variant(variant)))
        out = {"mq": mq, **summary}
        if per_sample:
            out["mq_per_sample"] = per.tolist()
            out.update({f"{k}_per_sample": comps[k].tolist() for k in COMPONENTS})
        return out
