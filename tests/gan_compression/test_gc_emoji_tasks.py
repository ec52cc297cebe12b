"""The emoji tasks: edges -> emoji (paired, RGB) and yellow -> skin-toned heads (unpaired); the group split."""

import pytest
import torch
from gc_fixtures import EMOJI_TASK, UNPAIRED, needs_emoji

from anycost.data.emoji import EmojiDataset, base_name
from anycost.gan_compression import TASKS, load_domains, load_pairs, validation_inputs, validation_pairs
from anycost.gan_compression.edges import canny
from anycost.gan_compression.tasks import luminance, split_indices


def test_the_split_holds_out_whole_groups_the_same_every_time():
    groups = torch.tensor([0, 1, 1, 2, 2, 2, 3, 4, 4, 5])
    validation, train = split_indices(groups, 4, seed=3)
    assert sorted([*validation.tolist(), *train.tolist()]) == list(range(10))
    assert len(validation) >= 4 and not set(groups[validation].tolist()) & set(groups[train].tolist())
    # the fewest leading groups: without the last validation group, fewer than 4 images are left
    last = groups[validation[-1]]
    assert int((groups[validation] != last).sum()) < 4
    again = split_indices(groups, 4, seed=3)
    assert torch.equal(again[0], validation) and torch.equal(again[1], train)
    # one image per group: the first n of a permutation drawn with the seed
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(5))
    validation, train = split_indices(torch.arange(7), 3, seed=5)
    assert torch.equal(validation, perm[:3]) and torch.equal(train, perm[3:])


def _names_by_pixels(subset: str) -> dict[bytes, str]:
    data = EmojiDataset(64, subset=subset, progress=False)
    return {torch.from_numpy(im).permute(2, 0, 1).contiguous().numpy().tobytes(): name
            for im, name in zip(data.images, data.names)}


@needs_emoji
def test_edges_to_emoji_pairs_rgb_targets_with_the_edges_of_their_luminance():
    task = TASKS[EMOJI_TASK]
    train, val = load_pairs(EMOJI_TASK, "train"), load_pairs(EMOJI_TASK, "validation")
    names = _names_by_pixels("faces_people")
    assert len(train) + len(val) == len(names)  # each image once (the font draws a few emoji alike)
    assert len(val) >= task.n_validation == 256 and train.describe() == f"{len(train)} pairs"
    inputs, targets = validation_pairs(EMOJI_TASK, 6)
    assert inputs.shape == targets.shape == (6, 3, 64, 64) and targets.dtype == torch.float32
    assert targets.min() >= -1 and targets.max() <= 1 and not torch.equal(targets[:, 0], targets[:, 2])  # colour
    assert set(inputs.unique().tolist()) == {-1.0, 1.0} and torch.equal(inputs[:, 0], inputs[:, 2])
    pixels = ((targets + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(inputs[:, :1] == -1, canny(luminance(pixels), task.sigma, task.low, task.high))
    assert torch.equal(validation_pairs(EMOJI_TASK, 2, 4)[1], targets[4:])  # the same split on every call
    assert torch.equal(validation_inputs(EMOJI_TASK, 6), inputs)
    # no emoji of the validation set has a skin-tone variant among the training targets
    bases = [{base_name(names[t.numpy().tobytes()]) for t in data.targets} for data in (train, val)]
    assert not bases[0] & bases[1]


@needs_emoji
def test_the_unpaired_task_splits_the_heads_into_yellow_and_toned_domains():
    task = TASKS[UNPAIRED]
    heads = EmojiDataset(64, subset="heads", progress=False)
    toned = {n for i, n in enumerate(heads.names) if heads.describe(i)["skin_tone"] != "none"}
    names = _names_by_pixels("heads")
    train, val = load_domains(UNPAIRED, "train"), load_domains(UNPAIRED, "validation")
    assert len(train.a) + len(val.a) + len(train.b) + len(val.b) == len(heads)
    assert len(val.a) + len(val.b) >= task.n_validation and len(val.a) >= 32
    for data in (train, val):
        assert not {names[x.numpy().tobytes()] for x in data.a} & toned
        assert {names[x.numpy().tobytes()] for x in data.b} <= toned
    bases = [{base_name(names[x.numpy().tobytes()]) for x in (*data.a, *data.b)} for data in (train, val)]
    assert not bases[0] & bases[1]  # whole emoji held out, in both domains
    a = validation_inputs(UNPAIRED, 5, 2)
    assert a.shape == (5, 3, 64, 64) and torch.equal(a, val.first(7)[0][2:])
    draws = [train.sample(torch.Generator().manual_seed(1), 3) for _ in range(2)]
    assert all(torch.equal(x, y) for x, y in zip(*draws)) and draws[0][1].shape == (3, 3, 64, 64)


@needs_emoji
def test_emoji_task_bad_input():
    with pytest.raises(ValueError, match="task emoji-yellow2toned is unpaired: it has no pairs"):
        validation_pairs(UNPAIRED, 4)
    with pytest.raises(ValueError, match="task emoji-edges2emoji is paired: it has no domains"):
        load_domains(EMOJI_TASK)
    with pytest.raises(ValueError, match=r"n must be an integer in 1\.\.\d+ \(the validation A images of"):
        validation_inputs(UNPAIRED, 10_000)
    with pytest.raises(ValueError, match="unknown task 'horse2zebra'; the tasks are fmnist-edges2shoes, "
                                         "emoji-edges2emoji, emoji-yellow2toned"):
        load_domains("horse2zebra")


@needs_emoji
def test_a_pix2pix_teacher_trains_on_edges_to_emoji(tmp_path):
    from anycost.gan_compression import RunConfig, TeacherRun
    from anycost.models.i2i import I2IArch

    arch = I2IArch.resnet(4, n_blocks=3, image_size=64, step=4)
    cfg = RunConfig.for_task(EMOJI_TASK, role="teacher", generator=arch, steps=1, ndf=4, d_layers=1)
    run = TeacherRun(cfg, tmp_path, progress=False)
    assert run.D.in_channels == 6 and cfg.batch == 4  # conditional: the edges beside the image
    stem = run.G.stem.weight.clone()
    run.train()
    assert not torch.equal(stem, run.G.stem.weight) and (tmp_path / "samples" / "step-000001.png").is_file()
