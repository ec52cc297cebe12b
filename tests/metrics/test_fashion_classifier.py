"""The bundled Fashion-MNIST classifier (its file, its recorded accuracy) and SlimGAN's class accuracy per width:
real test images of the asked class score about the classifier's accuracy, noise about chance; bad inputs."""

import pytest
import torch

from anycost.data.mnist import FASHION_CLASSES, find_fashion_mnist
from anycost.metrics.attributes import AttributeClassifier
from anycost.metrics.fashion_classifier import (
    CHECK_SLICE,
    default_classifier_path,
    fashion_mnist_32,
    load_fashion_classifier,
    recorded_accuracy,
)
from anycost.metrics.slimgan import class_accuracy
from anycost.models.slimgan import DCGANGenerator, SlimArch, build_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def fashion_mnist_present() -> bool:
    try:
        return bool(find_fashion_mnist())
    except FileNotFoundError:
        return False


needs_data = pytest.mark.skipif(not fashion_mnist_present(), reason="apt-get install dataset-fashion-mnist")
ARCH = SlimArch.dcgan32(32, z_dim=8, num_classes=10, img_channels=1)


@pytest.fixture(scope="module")
def classifier():
    return load_fashion_classifier()


@pytest.fixture(scope="module")
def check_slice():
    """The first CHECK_SLICE images of the test split, as the generators output them, and their labels."""
    images, labels = fashion_mnist_32("test")
    return images[:CHECK_SLICE], labels[:CHECK_SLICE]


class StubGenerator(DCGANGenerator):
    """A tiny conditional grey SlimGAN whose every width returns `make(classes)`: real images of the asked
    classes, or noise."""

    def __init__(self, make):
        super().__init__(ARCH)
        self.make = make

    def forward(self, z, y=None, width=None):
        self.subnet(width)  # the width check of a real generator
        return self.make(y)


def real_images_of(images, labels):
    """make(classes): for each asked class the next unused real image of that class (cycling)."""
    by_class = [images[labels == c] for c in range(10)]
    used = [0] * 10

    def make(classes):
        out = []
        for c in classes.tolist():
            out.append(by_class[c][used[c] % len(by_class[c])])
            used[c] += 1
        return torch.stack(out)

    return make


def test_bundled_file_is_small_and_records_its_accuracy(classifier):
    path = default_classifier_path()
    assert path is not None and path.stat().st_size < 1_000_000
    assert classifier.label_values == {"class": FASHION_CLASSES} and classifier.channels == 1
    assert classifier.input_size == 32 and not classifier.training
    assert recorded_accuracy(classifier) >= 0.90
    settings = classifier.metrics["settings"]
    assert settings["seed"] == 0 and settings["n_train"] == 60_000 and classifier.metrics["test"]["n"] == 10_000


@needs_data
def test_recorded_accuracy_of_the_check_slice(classifier, check_slice):
    images, labels = check_slice
    accuracy = (classifier.predict_labels(images)[:, 0] == labels).float().mean().item()
    assert accuracy == pytest.approx(classifier.metrics["test_check_slice"], abs=0.01)


@needs_data
def test_real_images_score_the_classifier_accuracy(classifier, check_slice):
    G = StubGenerator(real_images_of(*check_slice))
    accuracy = class_accuracy(G, 0.5, n=500, seed=1, classifier=classifier)
    assert accuracy == pytest.approx(classifier.metrics["test_check_slice"], abs=0.04)
    assert G.training  # scored in eval mode, given back as it was


def test_noise_scores_about_chance(classifier):
    noise = torch.Generator().manual_seed(0)
    G = StubGenerator(lambda classes: torch.rand(len(classes), 1, 32, 32, generator=noise) * 2 - 1)
    assert 0.03 <= class_accuracy(G, 1.0, n=400, seed=2, classifier=classifier) <= 0.2


def test_bad_inputs(classifier):
    torch.manual_seed(0)
    G = build_generator(ARCH)
    with pytest.raises(ValueError, match="not one of this generator's widths"):
        class_accuracy(G, 0.3, n=4, classifier=classifier)
    with pytest.raises(ValueError, match="n must be"):
        class_accuracy(G, 0.5, n=0, classifier=classifier)
    unconditional = build_generator(SlimArch.dcgan32(32, z_dim=8, img_channels=1))
    with pytest.raises(ValueError, match="needs a class-conditional generator: this one is unconditional"):
        class_accuracy(unconditional, 0.5, n=4)
    three = AttributeClassifier({"class": ("a", "b", "c")}, width=4, channels=1)
    with pytest.raises(ValueError, match="one label of the generator's 10 classes"):
        class_accuracy(G, 0.5, n=4, classifier=three)
    rgb = AttributeClassifier({"class": FASHION_CLASSES}, width=4)
    with pytest.raises(ValueError, match="images of 3 channels, the generator makes 1"):
        class_accuracy(G, 0.5, n=4, classifier=rgb)
    with pytest.raises(TypeError, match="AttributeClassifier"):
        class_accuracy(G, 0.5, n=4, classifier=lambda x: x)


def test_load_refuses_another_classifier(tmp_path):
    path = AttributeClassifier({"class": ("a", "b")}, width=4, channels=1).save(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a grey Fashion-MNIST classifier"):
        load_fashion_classifier(path)
