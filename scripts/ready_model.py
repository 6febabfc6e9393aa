"""Train the participant starter's model once, for a team that is stuck at training.

    python scripts/ready_model.py [--out build/ready-model/model.pkl]

The model is the starter's own recipe (`modules/train.py`: the notebook's pipeline, without
the leaking column), trained on every row of `data/train_data.csv` and saved with the
starter's `save_model` (atomically, with its metadata and a readable `model.json`), version
`ready-model`. Run it with the Python that will load the model (on a workshop server:
`/opt/workshop/venv/bin/python`), so that scikit-learn's version is the same; the
instructor then copies the file into the team's `models/` (docs/INSTRUCTOR.md).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "participant_starter"
TRAIN_CSV = ROOT / "data" / "train_data.csv"
OUT = ROOT / "build" / "ready-model" / "model.pkl"
VERSION = "ready-model"


def train(csv: Path, out: Path) -> dict:
    """Train the starter's pipeline on `csv` and save it to `out`; the saved metadata."""
    sys.path.insert(0, str(STARTER))  # `modules` is the starter's package, as in a team's home
    import pandas as pd
    from modules.model_io import save_model
    from modules.train import LABEL, train_pipeline

    pipeline, metadata = train_pipeline(pd.read_csv(csv), label=LABEL)
    return save_model(pipeline, {**metadata, "version": VERSION}, out)


def main(argv: list[str] | None = None) -> int:
    """Train, save, and say where the model went and how to hand it to a team."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the model file to write")
    parser.add_argument("--data", type=Path, default=TRAIN_CSV, help="the training CSV")
    args = parser.parse_args(argv)
    try:
        metadata = train(args.data, args.out)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        print(f"ready model: {exc}", file=sys.stderr)
        return 1
    features = len(metadata["features"])
    print(f"ready model: wrote {args.out} (version {VERSION}, {features} features)")
    print(f"  for a team: sudo -u USER cp {args.out} ~USER/participant_starter/models/model.pkl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
