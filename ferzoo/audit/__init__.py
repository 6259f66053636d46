"""Find the training images whose label is probably wrong (`ferzoo-audit`).

`audit()` trains K folds of a preset (every training image is then
predicted by a model that never trained on it, as confident learning
requires), or reads a finished `ferzoo-train` run, and ranks every
training image by how likely its label is wrong. The ranking combines
two signals:

- cleanlab's confident learning on the out-of-fold probabilities: its
  verdict (`cleanlab.filter.find_label_issues`, pruning by the estimated
  noise rate) and its per-image label quality (the self-confidence, the
  out-of-fold probability of the given label, from
  `cleanlab.rank.get_label_quality_scores`);
- the method's own clean score (`model.clean_scores()`: the Baseline's
  and DWMCA's probability of the given label, DualBranch's clean
  probability, ...), which a fold model records for the images it trains
  on, averaged over the K - 1 fold models that trained on each image as
  within-fold percentile ranks (raw scores of different folds are not on
  one scale). A score that does not depend on the given label (SCN's
  importance, AFCN's certainty, DACFER's consistency) is written to the
  table but left out of the ranking unless `label_free_scores=True`:
  measured on the synthetic faces it ranked the flips near chance.

The combination rule (`rule="rank_average"`, the default): each image's
combined quality is the mean of its percentile rank by cleanlab's label
quality and its percentile rank by the method's clean score (1/N is the
lowest, 1 the highest); images are ranked by increasing combined quality.
`issue_score` is one minus the combined quality (higher is more suspect).
`rule="flagged_first"` puts the images cleanlab flags first, then the
rest, each group by the combined quality. On the synthetic faces at 30%
symmetric and pair noise (`scripts/audit_benchmark.py`), the rank average
had the higher top-k F1 in 5 of the 6 (label-aware method, noise) cells,
and beat cleanlab alone with the Baseline at both noise types. A method
without a clean score (or an image without one) uses cleanlab's rank
alone. Cleanlab's verdict always decides which labels the corrected label
file changes.

The suggested label is the out-of-fold argmax; the corrected label file
changes the label of each image cleanlab flags whose suggestion differs
from its given label and has an out-of-fold probability of at least
`relabel_min_prob` (column `relabel`), and keeps every other label.

Files written to the output folder: `label_issues.csv` (the ranked
table), `corrected_labels.txt` (EAC / RAF-DB `list_patition_label.txt`
format, readable by `ferzoo-train --noise-file`), `sheets/*.png`
(contact sheets of the top N images, each captioned
`given -> suggested (issue score)`), `thumbs/*.png`, `index.html`
(opens from disk), `skipped.csv` (unreadable images), `audit.json` (the
settings and summary), `probabilities.npz` (the out-of-fold
probabilities and method scores in sample order, to rerank without
training) and `folds/fold_<k>/` (resumable fold runs).
"""

import sys
import types

from ferzoo.audit.core import DEFAULT_PRESET  # noqa: F401
from ferzoo.audit.core import PROBS_FILE  # noqa: F401
from ferzoo.audit.core import AuditOptions  # noqa: F401
from ferzoo.audit.core import audit
from ferzoo.audit.core import audit_spec  # noqa: F401
from ferzoo.audit.folds import FOLD_FILE  # noqa: F401
from ferzoo.audit.folds import fold_assignment  # noqa: F401
from ferzoo.audit.folds import fold_spec  # noqa: F401
from ferzoo.audit.folds import load_training_data  # noqa: F401
from ferzoo.audit.folds import train_fold  # noqa: F401
from ferzoo.audit.ranking import RULES  # noqa: F401
from ferzoo.audit.ranking import detection_metrics  # noqa: F401
from ferzoo.audit.ranking import percentile_rank  # noqa: F401
from ferzoo.audit.ranking import rank_issues  # noqa: F401
from ferzoo.audit.ranking import roc_auc  # noqa: F401
from ferzoo.audit.report import CONFIG_FILE  # noqa: F401
from ferzoo.audit.report import CORRECTED_FILE  # noqa: F401
from ferzoo.audit.report import CSV_COLUMNS  # noqa: F401
from ferzoo.audit.report import CSV_FILE  # noqa: F401
from ferzoo.audit.report import HTML_FILE  # noqa: F401
from ferzoo.audit.report import SKIPPED_FILE  # noqa: F401
from ferzoo.audit.report import corrected_labels  # noqa: F401
from ferzoo.audit.report import write_corrected_labels  # noqa: F401
from ferzoo.audit.report import write_report  # noqa: F401


class _CallableModule(types.ModuleType):
    """`ferzoo.audit(...)` calls `ferzoo.audit.audit(...)`."""

    def __call__(self, *args, **kwargs):
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
