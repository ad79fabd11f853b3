"""Model file tables: text columns survive the round trip whatever Arrow layout they come in.

Tables read from large Parquet files hold their text in several chunks, and a filtered frame's text can
be a slice of a larger buffer; both must be written as the rows they show, nothing more or less.
"""

import numpy as np
import pandas as pd
import pyarrow as pa

from dagster_project.model_file import Bundle, read_bundle, write_bundle


def test_chunked_and_sliced_text_columns_round_trip(tmp_path):
    chunks = pa.chunked_array([pa.array(["a", None, "ccc"]), pa.array(["dd", "Zoë", None, "eeeee"])])
    sliced = pd.Series(pd.arrays.ArrowStringArray(chunks)).iloc[1:6].reset_index(drop=True)
    whole = pd.Series(pd.arrays.ArrowStringArray(chunks))
    table = pd.DataFrame({"sliced": sliced, "number": np.arange(5), "first": whole.iloc[:5].to_numpy()})
    path = write_bundle(tmp_path / "m.pkl", Bundle({}, {}, {"users": table}), version=7)
    back = read_bundle(path, 7).tables["users"]
    assert back["sliced"].fillna("-").tolist() == ["-", "ccc", "dd", "Zoë", "-"]
    assert back["first"].fillna("-").tolist() == ["a", "-", "ccc", "dd", "Zoë"]
    assert back["number"].tolist() == list(range(5))
