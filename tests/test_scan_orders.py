import pytest
import torch

from serpentir.layers import direction_names, merge, scan_permutations, unroll


def test_four_diagonal_scans_visit_pixels_as_named():
    """A 2x3 grid with raster indices 0 1 2 / 3 4 5, scan orders written out by hand."""
    perm, _ = scan_permutations(4, "diagonal", 2, 3)
    assert perm.tolist() == [
        [0, 1, 2, 3, 4, 5],  # from the top left to the bottom right
        [2, 1, 0, 5, 4, 3],  # from the top right to the bottom left
        [5, 4, 3, 2, 1, 0],  # reverse of the first
        [3, 4, 5, 0, 1, 2],  # reverse of the second
    ]
    assert direction_names(2) == ("top-left->bottom-right", "bottom-right->top-left")


def test_cross_scans_visit_rows_and_columns():
    perm, _ = scan_permutations(4, "cross", 2, 3)
    assert perm.tolist() == [[0, 1, 2, 3, 4, 5], [0, 3, 1, 4, 2, 5], [5, 4, 3, 2, 1, 0], [5, 2, 4, 1, 3, 0]]


@pytest.mark.parametrize("order", ["diagonal", "cross"])
@pytest.mark.parametrize("directions", [1, 2, 4])
def test_merge_inverts_unroll(order, directions):
    x = torch.randn(2, 5, 7, 3)
    seqs = unroll(x, directions, order)
    assert seqs.shape == (2, directions, 35, 3)
    back = merge(seqs, 5, 7, order, reduce="none")
    for k in range(directions):
        assert torch.equal(back[:, k], x)
    torch.testing.assert_close(merge(seqs, 5, 7, order), directions * x)


def test_unroll_follows_the_permutation():
    x = torch.arange(6.0).view(1, 2, 3, 1)
    seqs = unroll(x, 4, "diagonal")
    assert seqs[0, 1, :, 0].tolist() == [2, 1, 0, 5, 4, 3]


def test_bad_direction_count():
    with pytest.raises(ValueError, match="1, 2 or 4"):
        direction_names(3)
