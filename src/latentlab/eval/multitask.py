"""Task metrics of a multi-output network, per task, in the units of the task's ``TaskSpec.metric``.

class / binary: accuracy (%); regress: mean absolute error in the target's units (degrees, pixels); image:
mean absolute error on the 0-255 scale; keypoints: NME (%), the mean distance of the visible points to their
truth divided by sqrt(w h) of the true points' bounding box (the AFLW convention of normalising by the face's
box size; Valle et al. report NME normalised by such a box). ``per_sample`` keeps every sample's loss
(Taskonomy's AHP compares methods image by image).
"""

from __future__ import annotations

import torch

from ..losses.multitask import task_loss


def metric(spec, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    k = spec.kind
    if k == "class":
        return 100.0 * (pred.argmax(1) == target).float().mean().item()
    if k == "binary":
        return 100.0 * ((pred > 0).float() == target.float()).float().mean().item()
    if k == "regress":
        return (pred * spec.scale - target.float().reshape(len(pred), -1)).abs().mean().item()
    if k == "image":
        return (pred.clamp(0, 1) * 255 - target.float()).abs().mean().item()      # a linear output, clamped
    if k == "keypoints":
        t = target.float().reshape(len(pred), -1, 2)
        p = pred.reshape_as(t) * spec.scale
        m = torch.ones_like(t[..., 0]) if mask is None else mask.float()
        wh = (t.amax(1) - t.amin(1)).clamp_min(1e-3)                          # (B, 2) box of the true points
        d = (p - t).norm(dim=-1) / (wh[:, 0] * wh[:, 1]).sqrt()[:, None]      # (B, K)
        return 100.0 * ((d * m).sum() / m.sum().clamp_min(1)).item()
    raise ValueError(f"unknown task kind {k!r}")


@torch.no_grad()
def evaluate_tasks(forward, fields: dict[str, torch.Tensor], specs: dict, prepare, batch_size: int = 1000,
                   per_sample: bool = False) -> dict:
    """``forward(x) -> {task: prediction}`` over the rows of ``fields`` (a dataset's tensors) -> {task: metric}
    and {task + "_loss": mean loss}; with ``per_sample``, also ``"per_sample": {task: (N,) losses}``."""
    preds: dict[str, list] = {t: [] for t in specs}
    n = len(fields["image"])
    for i in range(0, n, batch_size):
        out = forward(prepare(fields["image"][i:i + batch_size]))
        for t in specs:
            preds[t].append(out[t].float().cpu())
    res, losses = {}, {}
    for t, s in specs.items():
        p = torch.cat(preds[t])
        target, mask = fields[s.field][:n], fields[s.mask][:n] if s.mask else None
        res[t] = metric(s, p, target, mask)
        losses[t] = task_loss(s.kind, p, target, s.scale, mask)
        res[t + "_loss"] = losses[t].mean().item()
    if per_sample:
        res["per_sample"] = losses
    return res
