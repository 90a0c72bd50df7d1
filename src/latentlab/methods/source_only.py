"""Source only: the classifier trained on the labelled source domain alone, evaluated on the target (the
baseline every domain-adaptation table starts from; Ganin et al. 2016, Table 2's "source only" row).

    latentlab train source_only source=mnist target=mnist_m

The same networks, data, schedule and selection rules as ``dann`` (``methods/_domain.py``); no target image is
seen in training, so the unsupervised validators only pick among checkpoints of a source classifier.
"""

from __future__ import annotations

from ..engine.method import register_method
from ._domain import DAConfig, DAMethod


@register_method
class SourceOnly(DAMethod):
    name = "source_only"
    summary = "Domain adaptation baseline: trained on the labelled source, tested on the target"
    paper = "Ganin et al. 2016, Domain-adversarial training of neural networks (the source-only baseline)"
    Config = DAConfig
    uses_target = False

    def adapt_step(self, batch, step):
        xs, ys, _ = self.inputs(batch)
        loss, out = self.classification(self.head(self.backbone(xs)), ys)      # (B, classes)
        self.optimize("model", loss)
        return {"loss": loss.item(), **out}
