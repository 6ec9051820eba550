"""Credit error messages show cells as a reader wrote them, never Python or NumPy reprs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.credit.card import FeatureSpec, ModelCard
from engine.errors import InputError


def test_a_text_cell_in_a_numeric_column_is_quoted_text_not_a_numpy_repr() -> None:
    card = ModelCard("m", "lightgbm", "v1", (FeatureSpec("LIMIT_BAL", "numeric"),))
    # Frames built from NumPy string arrays hold np.str_ cells (repr "np.str_('lots')").
    frame = pd.DataFrame({"LIMIT_BAL": [np.str_("2000"), np.str_("lots")]})
    with pytest.raises(InputError) as caught:
        card.encode_frame(frame, "in.csv")
    assert str(caught.value) == "in.csv: column 'LIMIT_BAL' has 'lots' in row 2, expected a number"
