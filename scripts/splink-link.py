#!/usr/bin/env python3
"""Splink (UK Ministry of Justice, DuckDB backend) on the files `keel match` links: the peer
of the benchmark in scripts/bench-identity.sh.

A standard Splink 4 configuration as its FEBRL4 example sets it up: blocking on names (with the year of
birth), date of birth and postcode; comparisons for given name, surname, date of birth, postcode, address
(street number and street) and the identifier column; u by random sampling, the prior by
deterministic rules, m by EM on two blocking rules. No labels. Predict at 0.5 and score
against the truth file.

    splink-link.py LEFT.csv RIGHT.csv TRUTH.csv [--id-column soc_sec_id]
"""
import argparse
import time

started = time.time()

import pandas as pd  # noqa: E402
import splink.comparison_library as cl  # noqa: E402
from splink import DuckDBAPI, Linker, SettingsCreator, block_on  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("left")
parser.add_argument("right")
parser.add_argument("truth")
parser.add_argument("--id-column", default="soc_sec_id", help="the NHS number (or FEBRL soc_sec_id)")
args = parser.parse_args()


def read(path):
    df = pd.read_csv(path, dtype=str, skipinitialspace=True, keep_default_na=False)
    df.columns = [c.strip() for c in df.columns]
    df = df.apply(lambda s: s.str.strip())
    df = df.replace("", None)
    keep = ["rec_id", "given_name", "surname", "date_of_birth", "postcode", "street_number", "address_1", args.id_column]
    df = df[keep].rename(columns={args.id_column: "identifier"})
    return df


left = read(args.left)
right = read(args.right)
left["source_dataset"] = "left"
right["source_dataset"] = "right"

settings = SettingsCreator(
    link_type="link_only",
    unique_id_column_name="rec_id",
    blocking_rules_to_generate_predictions=[
        # Names with the year of birth: the synthetic 1M population draws names from short
        # lists, where names alone make blocks of hundreds of millions of pairs.
        block_on("given_name", "surname", "substr(date_of_birth, 1, 4)"),
        block_on("surname", "date_of_birth"),
        block_on("given_name", "date_of_birth"),
        block_on("postcode", "date_of_birth"),
        block_on("postcode", "surname"),
        block_on("identifier"),
    ],
    comparisons=[
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]),
        cl.ExactMatch("street_number"),
        cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
        cl.DamerauLevenshteinAtThresholds("identifier", [1, 2]),
    ],
    retain_intermediate_calculation_columns=False,
    retain_matching_columns=False,
)

linker = Linker([left, right], settings, db_api=DuckDBAPI())
linker.training.estimate_probability_two_random_records_match(
    [block_on("given_name", "surname", "date_of_birth"), block_on("identifier", "date_of_birth")],
    recall=0.7,
)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
linker.training.estimate_parameters_using_expectation_maximisation(
    block_on("given_name", "surname", "substr(date_of_birth, 1, 4)")
)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
predictions = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()

truth = pd.read_csv(args.truth, dtype=str)
true_pairs = set(zip(truth.iloc[:, 0].str.strip(), truth.iloc[:, 1].str.strip()))
predicted = set()
for l_src, l_id, r_id in zip(predictions["source_dataset_l"], predictions["rec_id_l"], predictions["rec_id_r"]):
    predicted.add((l_id, r_id) if l_src == "left" else (r_id, l_id))
tp = len(predicted & true_pairs)
precision = tp / len(predicted) if predicted else 0.0
recall = tp / len(true_pairs) if true_pairs else 0.0
f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
print(f"splink: predicted {len(predicted)}; true positives {tp}, false positives {len(predicted) - tp}, false negatives {len(true_pairs) - tp}")
print(f"precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
print(f"time {time.time() - started:.2f}s")
