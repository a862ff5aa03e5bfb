"""Selection files (flexplugin/selection.py), the one format of the protocols, viewers and engine."""
import pytest

from flexplugin.selection import read_ids, write_ids


def test_selection_round_trip_with_a_name(tmp_path):
    path = tmp_path / "sel.txt"
    write_ids(path, [5, 3, 12], "subset # one")
    assert path.read_text().splitlines()[0] == "# subset # one"
    assert read_ids(path) == [5, 3, 12]


def test_selection_written_by_hand(tmp_path):
    path = tmp_path / "sel.txt"
    path.write_text("# picked in the landscape\n1, 2 3\n\n4  # the last\n")
    assert read_ids(path) == [1, 2, 3, 4]


def test_a_token_that_is_not_an_id_names_the_file_and_line(tmp_path):
    path = tmp_path / "sel.txt"
    path.write_text("1\n2\nparticle\n")
    with pytest.raises(ValueError, match=r"sel.txt, line 3: 'particle' is not a particle id"):
        read_ids(path)
