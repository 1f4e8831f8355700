"""Losses over batches that mix taxonomies: padded classes are ignored, 255 pixels too."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from landsegmenter.data.las_dataset import LASDataset, collate_las
from landsegmenter.model.presets import build_model
from landsegmenter.train.forward import batch_groups, forward_batch
from landsegmenter.train.losses import class_weight_table, cross_entropy, pad_classes, segmentation_loss


def test_padded_classes_do_not_change_the_loss_or_get_gradient():
    torch.manual_seed(0)
    four = torch.randn(1, 4, 8, 8, requires_grad=True)
    two = torch.randn(1, 2, 8, 8, requires_grad=True)
    label_four = torch.randint(0, 4, (1, 8, 8))
    label_two = torch.randint(0, 2, (1, 8, 8))
    label_two[0, :3] = 255
    padded = torch.cat([four, pad_classes(two, 4)])
    loss = cross_entropy(padded, torch.cat([label_four, label_two]))
    per_pixel = torch.cat([
        F.cross_entropy(four, label_four, reduction="none").flatten(),
        F.cross_entropy(two, label_two, ignore_index=255, reduction="none")[label_two != 255],
    ])
    assert torch.allclose(loss, per_pixel.mean())
    loss.backward()
    assert torch.isfinite(four.grad).all() and torch.isfinite(two.grad).all()
    assert two.grad[0, :, :3].abs().max() == 0  # ignored pixels


def test_class_weights_by_name_and_empty_labels():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    label = torch.tensor([[0, 1, 2, 2]]).repeat_interleave(4, 0)[None]
    weights = class_weight_table([["water", "trees", "built"]], {"Built": 0.0, "water": 2.0}, 3, torch.device("cpu"))
    assert weights.tolist() == [[2.0, 1.0, 0.0]]
    per_pixel = F.cross_entropy(logits, label, reduction="none")
    w = torch.tensor([2.0, 1.0, 0.0])[label]
    assert torch.allclose(cross_entropy(logits, label, weights), (per_pixel * w).sum() / w.sum())
    empty = cross_entropy(logits, torch.full_like(label, 255))
    empty.backward()
    assert empty.item() == 0.0 and logits.grad is not None
    assert class_weight_table([["a", "b"]], {}, 2, torch.device("cpu")) is None


def test_a_mixed_batch_is_run_per_taxonomy_and_masked(train_store):
    data = LASDataset(train_store)
    first = {data.subsets[g]: i for i, g in reversed(list(enumerate(data.group_ids)))}
    batch = collate_las([data[first["polygons"]], data[first["dw"]], data[first["polygons"] + 1]])
    groups = batch_groups(batch)
    assert [(g.subset, g.indices, g.n_bands, len(g.class_names)) for g in groups] == [
        ("polygons", [0, 2], 12, 4), ("dw", [1], 6, 9)]
    torch.manual_seed(0)
    model = build_model("tiny")
    out = forward_batch(model, batch)
    assert out.decoder_logits.shape == (3, 9, 64, 64) and out.subsets == ["polygons", "polygons", "dw"]
    assert torch.isneginf(out.decoder_logits[:2, 4:]).all() and torch.isfinite(out.decoder_logits[2]).all()
    assert torch.equal(out.label[2], batch["label"][1])
    terms = segmentation_loss(out.decoder_logits, out.similarity_logits, out.label, 0.5)
    terms.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    # the same loss as running each taxonomy on its own, weighted by labelled pixels
    with torch.no_grad():
        parts = []
        for rows, wavelengths, names in (([0, 2], batch["wavelengths"][0], batch["class_names"][0]),
                                         ([1], batch["wavelengths"][1, :6], batch["class_names"][1])):
            image = batch["image"][rows][:, : len(wavelengths)]
            logits = model.forward_train(image, wavelengths, names).decoder_logits
            label = batch["label"][rows]
            parts.append((F.cross_entropy(logits, label, ignore_index=255, reduction="sum"), (label != 255).sum()))
        expected = sum(p[0] for p in parts) / sum(p[1] for p in parts)
    assert torch.allclose(terms.decoder, expected, rtol=1e-4)
