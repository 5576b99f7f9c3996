"""Benchmark suites: every model on one split and one set of seeds, tabulated with CIs.

>>> from seqrec.benchmark import load_suite, run_suite  # doctest: +SKIP
>>> results = run_suite(load_suite("ml-100k-full"), quick=True)  # doctest: +SKIP
>>> print(results.results_md.read_text())  # doctest: +SKIP
"""

from seqrec.benchmark.runner import SuiteResults, run_suite
from seqrec.benchmark.suite import Entry, Suite, load_suite

__all__ = ["Entry", "Suite", "SuiteResults", "load_suite", "run_suite"]
