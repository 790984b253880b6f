"""cdb-eval --data never writes the name of the run's own test evaluation (RUN_DIR/eval/<checkpoint>_test.json),
even for a folder called `test`, so neither report replaces the other."""
from pathlib import Path

import pytest

from cdb.build.evaluate import report_name
from cdb.core.errors import CdbError


def test_default_names_of_the_runs_test_and_of_a_folder_called_test_differ():
    assert report_name("last", None, None) == "last_test"
    assert report_name("best", None, None) == "best_test"
    assert report_name("last", Path("/somewhere/my_data/test"), None) == "last_data_test"
    assert report_name("best", Path("/somewhere/photos"), None) == "best_data_photos"


@pytest.mark.parametrize("name", ["last_test", "best_test"])
def test_the_runs_own_name_is_refused_for_other_data_in_one_line(name):
    with pytest.raises(CdbError, match="the name of the run's own test evaluation") as err:
        report_name("last", Path("/somewhere/test"), name)
    assert "\n" not in str(err.value)
    assert report_name("last", None, name) == name  # the run's own test split may be named so
