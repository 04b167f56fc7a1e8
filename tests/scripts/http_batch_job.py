"""One batch through the OpenAI backend, run by tests in a subprocess (to be killed mid-batch).

usage: http_batch_job.py BASE_URL CACHE_DIR N    (prompts p0 .. p{N-1}, all in flight at once)
Prints one JSON line: the answers, in request order.
"""

import json
import sys

from hf_vitcurate.engine.backends import OpenAIBackend, Request

if __name__ == "__main__":
    url, cache_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    backend = OpenAIBackend(url, "gpt-test", cache_dir=cache_dir, max_concurrency=n, timeout_s=60, max_retries=0)
    out = backend.generate([Request(f"p{i}", max_tokens=8) for i in range(n)])
    print(json.dumps([r.text for r in out]))
