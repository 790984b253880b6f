"""cdb.build.checks: a setting the chosen dataset does not use is refused in one line, before anything is built."""
from __future__ import annotations

import pytest

from cdb.core.errors import CdbError
from helpers import compose


def test_settings_a_dataset_does_not_use_are_refused():
    from cdb.build.checks import check_run

    with pytest.raises(CdbError, match="imbalance=50 is not allowed: dataset mnist_imbalanced does not use it"):
        check_run(compose(["imbalance=50"]), ["imbalance=50"])
    check_run(compose(["dataset=cifar_lt", "imbalance=50"]), ["dataset=cifar_lt", "imbalance=50"])
