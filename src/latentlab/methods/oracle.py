"""Oracle: the classifier trained on the *labelled* target domain (the "train on target" upper bound of
Ganin et al. 2016, Table 2), with the same networks, input, schedule and budget as the adaptation methods.

    latentlab train oracle target=mnist_m

Its labelled domain is the target (``source`` is not used): its ``source_val`` rule reads the held-out
labelled part of the target's train, so it selects on labelled target data, which is what an oracle may do.
"""

from __future__ import annotations

from ..engine.method import register_method
from .source_only import SourceOnly


@register_method
class Oracle(SourceOnly):
    name = "oracle"
    summary = "Domain adaptation upper bound: trained on the labelled target"
    paper = "Ganin et al. 2016, Domain-adversarial training of neural networks (the train-on-target row)"
    labelled = "target"
