"""What every objective shares: the registry, Transformers4Rec's ``padding_idx``."""

from __future__ import annotations

import pytest

from seqrec.objectives import OBJECTIVES, build_objective, objective_parameters

ALL = frozenset({"causal", "bidirectional", "permutation"})


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_accepts_padding_idx_zero_only(name) -> None:
    assert "padding_idx" in objective_parameters(name)
    objective = build_objective(
        name, n_items=9, hidden_size=4, model_name="M", supported_attention=ALL, padding_idx=0
    )
    assert objective.padding_idx == 0
    with pytest.raises(ValueError, match=r"padding_idx 1 is not supported.*left-pad with item 0"):
        build_objective(
            name, n_items=9, hidden_size=4, model_name="M", supported_attention=ALL, padding_idx=1
        )
