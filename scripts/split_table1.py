"""Rewrite results/table1.json from rows of ``table1_seed`` (one per run, every arm inside) to
rows of ``table1_arm`` (one per run, arm and ratio), copying the values. Rows already in the new
shape are kept as they are. `labkit verify results/table1.json` recomputes rows to prove the
copy. Run: python scripts/split_table1.py [results/table1.json]"""

import json
import sys
from pathlib import Path

from labkit.experiments.table1 import split_seed_row
from labkit.store import write_json

path = Path(sys.argv[1] if len(sys.argv) > 1 else "results/table1.json")
data = json.loads(path.read_text())
rows, split = [], 0
for row in data["rows"]:
    if "arm" in row["config"]:
        rows.append(row)
    else:
        rows += split_seed_row(row)
        split += 1
data.update(point_fn="labkit.experiments:table1_arm", rows=rows)
data.pop("experiment", None)  # the next `labkit results run table1` writes the new rules
write_json(path, data)
print(f"{path}: {split} run rows split into {len(rows)} arm rows")
