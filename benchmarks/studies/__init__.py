"""Studies: experiments that answered one question once (the MNIST-M chain, the GPU checks), kept runnable.

``python -m benchmarks.run studies.NAME`` re-runs one and writes results/NAME.md; BENCHMARKS.md lists them
after the suites, under "Studies". A suite (``benchmarks/NAME.py``) measures a method family against its
anchor and is re-run when the code changes; a study is re-run only to re-ask its question.
"""
