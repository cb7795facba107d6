"""Training rows for the training tests: a product's pairs with a hard negative, real or synthetic."""

import pandas as pd


def pairs(n=24):
    return pd.DataFrame({
        "anchor": [f"how do I reset jaguar {i}" for i in range(n)],
        "positive": [f"Jaguar {i} resets when the button is held for {i} seconds." for i in range(n)],
        "negative_1": [f"The Ocelot {i} battery lasts {i} hours." for i in range(n)],
    })


def mixed(n_real, n_synthetic):
    real = pairs(n_real).assign(source="qa_pairs")
    synthetic = pd.DataFrame({
        "anchor": [f"what does the Ocelot manual say about page {i}" for i in range(n_synthetic)],
        "positive": [f"Page {i} of the Ocelot manual covers charging." for i in range(n_synthetic)],
        "negative_1": [f"Page {i} of the Lynx manual covers storage." for i in range(n_synthetic)],
    }).assign(source="synthetic")
    return pd.concat([real, synthetic], ignore_index=True)
