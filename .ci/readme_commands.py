"""Prints the README's runnable commands, one per line, in order: the lines of every
```bash block. ```text / ```console blocks are illustrative (placeholders such as DIR)
and are not printed; the README says so. .ci/run runs what this prints, verbatim."""
import re
import sys
from pathlib import Path

readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md").read_text()
for block in re.findall(r"^```bash\n(.*?)^```", readme, flags=re.S | re.M):
    for line in block.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            print(line)
