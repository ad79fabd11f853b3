"""Bringing a trained model up to date with new purchases without training it again (fold-in).

Shrunk PureSVD scores a customer from their own purchase row and the item factors (recommender.py), so a
customer's lists follow their purchases with no refit: adding the new purchases to the customers' rows
(new customers get new rows) is all the served model needs. What training learnt stays as it is: the
item factors, the neighbours, the best-sellers and the settings. Customers who bought nothing new keep
exactly the lists they had, so only the buyers' lists are built again (customer_lists.update_for_model).

That holds only when the history grew at its end: new purchase files named after the model's files,
whose purchases are no older than its latest, every file the model learnt from unchanged, the same
customers and products. `extension` checks that, `retrain_reason` adds when a full training is due
anyway (the model has aged, or enough was added since that the factors should learn from it), and
`update_model` does the update. The nightly refresh of new data only updates; "everything" trains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dagster_project.model_card import ModelCard, ModelUpdate, TrainingData
from dagster_project.recommender import RecommenderModel
from dagster_project.training import Purchases, _arrow, _arrow_strings, positions


@dataclass(frozen=True)
class UpdatePolicy:
    """When a refresh of new data only trains the model again instead of updating it."""

    retrain_after_days: float = 3.0  # since the last full training
    retrain_after_growth: float = 0.2  # purchases added since training, as a share of those trained on


def combined_checksum(data: TrainingData) -> str:
    """One fingerprint of the data a model covers: its files' checksums and the customers' and products'."""
    lines = [f"{key}\t{checksum}" for key, checksum in sorted(data.files.items())] + [f"\treference\t{data.reference}"]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def latest(times: pd.Series | pd.api.extensions.ExtensionArray) -> str | None:
    """The latest purchase time as ISO 8601 text (None when there is none)."""
    found = pd.Series(times).max() if len(times) else None
    return None if found is None or pd.isna(found) else pd.Timestamp(found).isoformat()


def extension(before: TrainingData | None, now: TrainingData) -> tuple[list[str] | None, str]:
    """The files that extend `before` (what a model or a table covers) into `now` (in name order), or None and why
    they do not, in plain words.

    Purchase times are checked once the new files are read (`older_purchases`).
    """
    if before is None:
        return None, "it does not say which purchase files it covers"
    if before.reference != now.reference:
        return None, "the customers or the products changed since"
    for key, checksum in sorted(before.files.items()):
        if key not in now.files:
            return None, f"{key} left the data folder"
        if now.files[key] != checksum:
            return None, f"{key} changed since"
    added = sorted(set(now.files) - set(before.files))
    if added and before.files and added[0] < max(before.files):
        return None, f"{added[0]} is named before files already covered (its lines count as earlier ones)"
    return added, "one new purchase file" if len(added) == 1 else f"{len(added)} new purchase files"


def older_purchases(before: TrainingData, times: pd.Series) -> str | None:
    """Why new purchases cannot be added at the end of the history: some are older than its latest."""
    if before.last_purchase is None or not len(times):
        return None
    earliest = pd.Series(times).min()
    if pd.isna(earliest) or earliest >= pd.Timestamp(before.last_purchase):
        return None
    return (
        f"the new files hold purchases from {earliest:%Y-%m-%d %H:%M}, before the latest already covered "
        f"({pd.Timestamp(before.last_purchase):%Y-%m-%d %H:%M})"
    )


def retrain_reason(
    model: RecommenderModel, added: int, policy: UpdatePolicy, now: datetime | None = None
) -> str | None:
    """Why the model is due for a full training even though an update is possible (None: update it)."""
    card = model.card
    now = now or datetime.now(UTC)
    trained = datetime.fromisoformat(card.trained_at.replace("Z", "+00:00"))
    days = (now - trained).total_seconds() / 86400.0
    if days < 0:
        return f"the model's training time ({card.trained_at}) is later than now: the clock changed"
    if days >= policy.retrain_after_days:
        return f"the model was trained {days:.1f} days ago (trained again after {policy.retrain_after_days:g})"
    since = (card.update.transactions if card.update else 0) + added
    if card.transactions and since > policy.retrain_after_growth * card.transactions:
        return (
            f"{since:,} purchases were added since training, over {policy.retrain_after_growth:.0%} of the "
            f"{card.transactions:,} it was trained on"
        )
    return None


def _places(values: pd.Series, index: pd.Series) -> np.ndarray:
    """Where each of `values` is in the unique `index` (-1: not there), as int64: `training.positions`, but
    hashing only the distinct `values` (a day's ~25,000 buyers) instead of the whole index (~1M customers)."""
    if not (_arrow_strings(values) and _arrow_strings(index)):
        return positions(values, index).astype(np.int64)
    import pyarrow.compute as pc

    distinct = pc.unique(_arrow(values))
    found = pc.index_in(_arrow(index), value_set=distinct).fill_null(-1).to_numpy(zero_copy_only=False)
    place = np.full(len(distinct), -1, dtype=np.int64)
    rows = np.flatnonzero(found >= 0)
    place[found[rows]] = rows
    return place[pc.index_in(_arrow(values), value_set=distinct).to_numpy(zero_copy_only=False)]


def _profiles(
    model: RecommenderModel, user_ids: pd.Index, rows: np.ndarray, transactions: pd.DataFrame
) -> pd.DataFrame:
    """The customer profiles with the new purchases' count, spend and latest time added (new buyers appended)."""
    profiles = model.user_profiles
    per_row = pd.DataFrame({"row": rows, "amount": transactions["amount"].to_numpy(dtype="float64")})
    per_row["timestamp"] = transactions["timestamp"].array
    totals = per_row.groupby("row", sort=True).agg(
        purchases=("amount", "size"), spend=("amount", "sum"), last=("timestamp", "max")
    )
    buyers = user_ids[totals.index.to_numpy()]
    # get_indexer, not isin: on ~1M text ids isin takes seconds, the look-up a fraction of one
    # Arrow's look-up, not Index.get_indexer (which turns ~1M text ids into Python strings first)
    where = _places(pd.Series(buyers.array), pd.Series(profiles.index.array))
    unknown = where < 0
    missing = buyers[unknown]
    if len(missing):  # buyers missing from the customers table are listed after it, as training lists them
        where[unknown] = len(profiles) + np.arange(len(missing))  # appended in this order just below
        profiles = pd.concat([profiles, pd.DataFrame(index=pd.Index(missing, name=profiles.index.name))])
        profiles["purchases"] = profiles["purchases"].fillna(0).astype("int64")
        profiles["spend"] = profiles["spend"].fillna(0.0)
    else:
        profiles = profiles.copy()
    purchases = profiles["purchases"].to_numpy(dtype="int64", copy=True)
    purchases[where] += totals["purchases"].to_numpy()
    spend = profiles["spend"].to_numpy(dtype="float64", copy=True)
    spend[where] += np.nan_to_num(totals["spend"].to_numpy(), nan=0.0)
    profiles["purchases"], profiles["spend"] = purchases, spend
    last = profiles["last_purchase"]
    old = last.iloc[where].reset_index(drop=True)
    new = pd.Series(pd.to_datetime(totals["last"].to_numpy(), utc=True)).astype(last.dtype)
    values = last.array.copy()
    values[where] = pd.concat([old, new], axis=1).max(axis=1).astype(last.dtype).array  # NaT: the other one
    profiles["last_purchase"] = values
    return profiles


def update_model(
    model: RecommenderModel,
    transactions: pd.DataFrame,
    data: TrainingData,
    files: Sequence[str],
    run_id: str | None = None,
) -> tuple[RecommenderModel, pd.Index]:
    """`model` with the new prepared `transactions` added to its customers' histories, and the customers changed.

    `data` is what the model covers afterwards, `files` the purchase files the transactions came from.
    New customers take rows after the known ones, in order of first purchase: the order a full training
    on the whole history gives them when the new purchases come last.
    """
    # a Series over a plain range: one indexed by ~1M ids hashes them all on the first attribute look-up
    rows = _places(transactions["user_id"], pd.Series(model.user_ids.array))
    unseen = rows < 0
    new_ids = pd.Index(pd.unique(transactions["user_id"].to_numpy()[unseen]), dtype="string")
    if len(new_ids):
        rows[unseen] = model.n_users + new_ids.get_indexer(transactions["user_id"].to_numpy()[unseen])
    user_ids = pd.Index(model.user_ids.append(new_ids) if len(new_ids) else model.user_ids, dtype="string")
    columns = positions(transactions["product_id"], model.items["product_id"])
    shape = (len(user_ids), model.n_items)
    # the new purchases counted as training counts them (products outside the catalogue left out)
    added = Purchases(rows, columns, transactions["timestamp"].array).counts(shape).astype(model.counts.dtype)
    old = model.counts.tocsr()
    # the known rows as they are, with empty rows for the new customers (the same arrays, no copy)
    indptr = np.concatenate([old.indptr, np.full(len(new_ids), old.indptr[-1], dtype=old.indptr.dtype)])
    counts = (sp.csr_matrix((old.data, old.indices, indptr), shape=shape) + added).tocsr()
    counts.sort_indices()
    changed = user_ids[np.unique(rows)]
    profiles = _profiles(model, user_ids, rows, transactions)
    card = model.card
    before = card.update
    update = ModelUpdate(
        updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        updates=(before.updates if before else 0) + 1,
        files=[*(before.files if before else []), *files],
        latest_files=list(files),
        transactions=(before.transactions if before else 0) + len(transactions),
        customers=len(changed),
        new_customers=(before.new_customers if before else 0) + len(new_ids),
        based_on=card.version,
    )
    card = replace(card, data=data, update=update, run_id=run_id or card.run_id, data_checksum=combined_checksum(data))
    updated = replace(model, user_ids=user_ids, user_profiles=profiles, counts=counts, card=card)
    return updated, changed


def training_data(files: Mapping[str, str], reference: str, last_purchase: str | None) -> TrainingData:
    return TrainingData(files=dict(sorted(files.items())), reference=reference, last_purchase=last_purchase)


def counted_updates(card: ModelCard, updates: int) -> ModelCard:
    """The card marked as after `updates` updates, nothing else said (for models updated by other means)."""
    return replace(card, update=ModelUpdate(datetime.now(UTC).isoformat(timespec="seconds"), updates, [], [], 0, 0, 0))
