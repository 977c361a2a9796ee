"""The book's digit model and what scores it, on scikit-learn's 8x8 digits: shared by the
Preliminaries, the fine-tuning chapter (``book/finetune.md``) and ScoreFusion.

- :mod:`.unet`         the one pre-trained digit U-Net (train once or load the cached
  artifact, :func:`~.unet.digit_unet`) and its strided sub-chain (:func:`~.unet.strided`);
- :mod:`.classifiers`  digit classifiers, a class log-probability as a reward, and the quality
  and diversity scores of a set of digits;
- :mod:`.images`       a trained image score model as the pre-trained chain of fine-tuning, its
  samples scored, and images tiled for a figure.

Nothing here needs the ``large`` extra. The fine-tuning experiment on the digits is
:mod:`diffctrl.finetune.digits_experiments`.
"""

from .classifiers import (
    ClassLogProb,
    DigitClassifier,
    DigitCNN,
    accuracy,
    class_entropy,
    data_nn_floor,
    digit_quality,
    frechet_distance,
    label_tv,
    max_entropy,
    mean_pairwise_distance,
    nearest_distance,
    predict,
    train_classifier,
)
from .images import image_grid, model_chain, score_samples, to_images
from .unet import (
    ARTIFACTS_ENV,
    DIGIT_UNET,
    PUBLISHED_ARTIFACTS,
    WEIGHTS_URL_ENV,
    StridedModel,
    artifact_key,
    artifact_name,
    artifacts_dir,
    check_config,
    code_fingerprint,
    digit_unet,
    sha256_file,
    strided,
    weights_url,
)

__all__ = [
    "ARTIFACTS_ENV",
    "DIGIT_UNET",
    "PUBLISHED_ARTIFACTS",
    "WEIGHTS_URL_ENV",
    "ClassLogProb",
    "DigitCNN",
    "DigitClassifier",
    "StridedModel",
    "accuracy",
    "artifact_key",
    "artifact_name",
    "artifacts_dir",
    "check_config",
    "class_entropy",
    "code_fingerprint",
    "data_nn_floor",
    "digit_quality",
    "digit_unet",
    "frechet_distance",
    "image_grid",
    "label_tv",
    "max_entropy",
    "mean_pairwise_distance",
    "model_chain",
    "nearest_distance",
    "predict",
    "score_samples",
    "sha256_file",
    "strided",
    "to_images",
    "train_classifier",
    "weights_url",
]
