"""Honest robustness evaluation: accuracy under attacks and corruptions, with
gradient-masking checks.

Example:

```python
report = keras_robust.evaluate.robustness_report(model, (x_test, y_test), attacks="quick")
print(report.summary())
```
"""
from keras_robust.evaluate.benchmark import BenchmarkResult, perturbation_benchmark
from keras_robust.evaluate.certify import (
    ABSTAIN,
    Certificate,
    CertifiedReport,
    SmoothedClassifier,
    SmoothingConfig,
    certified_accuracy,
    certified_report,
    certify_dataset,
    predict_from_counts,
    radius_from_counts,
)
from keras_robust.evaluate.checks import (
    CE_MARGIN_CHECK,
    RANDOM_INFERENCE_CHECK,
    Check,
    ce_margin_agreement,
    decode_mask,
    encode_mask,
    inference_check,
    run_checks,
)
from keras_robust.evaluate.metrics import accuracy, predict_logits, robust_accuracy
from keras_robust.evaluate.monitor import MONITOR_ATTACK, RobustAccuracyMonitor
from keras_robust.evaluate.report import RobustnessReport, robustness_report
from keras_robust.evaluate.stats import clopper_pearson, mcnemar_p_value, wilson_interval
from keras_robust.evaluate.suites import SUITES, AttackSpec, attack_spec, build_suite

__all__ = [
    "ABSTAIN", "Certificate", "CertifiedReport", "SmoothedClassifier", "SmoothingConfig",
    "certified_accuracy", "certified_report", "certify_dataset", "clopper_pearson",
    "predict_from_counts", "radius_from_counts",
    "AttackSpec", "BenchmarkResult", "CE_MARGIN_CHECK", "Check", "MONITOR_ATTACK", "RANDOM_INFERENCE_CHECK",
    "RobustAccuracyMonitor", "RobustnessReport", "SUITES",
    "accuracy", "attack_spec", "build_suite", "ce_margin_agreement", "decode_mask", "encode_mask", "inference_check",
    "perturbation_benchmark", "predict_logits",
    "mcnemar_p_value", "robust_accuracy", "robustness_report", "run_checks", "wilson_interval",
]
