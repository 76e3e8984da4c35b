"""Speed benchmarks, one module each, run by ``make bench``; each prints its figures."""
