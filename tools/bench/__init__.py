"""edged's benchmark suite: ``python -m tools.bench [--quick] [--soak] [--json PATH]``.

Sections (``--only NAME``): ``stages`` (each stage vs the work floor), ``pipeline``
(decode + default recipe per frame, and frames/s through the worker pool),
``peers`` (scikit-image SSIM and pixelmatch-fast on the same frames), ``http``
(analyze_raw_image and analyze_image vs a no-op floor, the wait queue), ``ltu`` (LTU
differences fresh and with a repeated reference vs the SSIM recipe), ``e2e``
(synthetic cameras -> daemon -> mosquitto -> subscriber) and ``memory`` (RSS growth;
``--soak`` for 10 minutes).
See docs/benchmarks.md for how to read the table.
"""

from tools.bench._cli import SECTIONS, main, run_suite

__all__ = ["SECTIONS", "main", "run_suite"]
