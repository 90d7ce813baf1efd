"""The legacy batch pricing job, run as a plain script (no notebook, no nbgov) before the notebooks.

It refits the old ridge-regression tariff on the quotes extract and pickles it to
legacy_pricing.pkl: nbgov never sees this model being trained or saved, so the notebook that loads
it loads an unrecorded model.
"""

import pickle

import pandas as pd
from sklearn.linear_model import Ridge

NUMERIC = ["vehicle_value", "driver_age", "years_licensed", "annual_km", "prior_claims"]

quotes = pd.read_csv("quotes.csv")
legacy = Ridge(alpha=3.0).fit(quotes[NUMERIC], quotes["premium"])
with open("legacy_pricing.pkl", "wb") as fh:
    pickle.dump(legacy, fh)
