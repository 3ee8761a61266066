#!/usr/bin/env python3
"""Runs the Python signer of docs/CLIENT.md against the test vectors of docs/CLIENT.md.

The Rust test crates/api/tests/it/vectors.rs checks the vectors against Sheaf's own signer;
this checks that the guide's Python snippet, as printed, reproduces them too. Needs the
`cryptography` package (`pip install cryptography`).
"""
import json
import pathlib
import re
import sys

GUIDE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "CLIENT.md"


def main() -> int:
    text = GUIDE.read_text()
    snippet = re.search(r"```python\n(.*?)\n```", text, re.S).group(1)
    namespace: dict = {}
    exec(snippet, namespace)  # the guide's own code, as printed
    block = text[text.index("<!-- test-vectors:"):]
    vectors = json.loads(re.search(r"```json\n(.*?)\n```", block, re.S).group(1))
    secret = bytes.fromhex(vectors["secret_key"])
    failed = 0
    for v in vectors["requests"]:
        body = v["body"].encode() if "body" in v else bytes.fromhex(v["body_hex"])
        got = namespace["sign"](secret, v["method"], v["path"], body,
                                v["timestamp_ms"], bytes.fromhex(v["nonce"]))
        if got != v["headers"]:
            failed += 1
            print(f"{v['path']}: expected {v['headers']}, got {got}", file=sys.stderr)
    print(f"{len(vectors['requests']) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
