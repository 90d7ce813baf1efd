"""Writes the small data files the corpus notebooks read (run once; its outputs are committed).

    python tests/data/corpus/make_data.py

Every table is drawn from a seeded numpy generator, so a re-run writes the same values (the CSV
bytes are identical; Parquet files may differ in their writer's metadata with another pyarrow).
Each file's content is distinct from every other's: the ledger addresses datasets by content, so
two identical files would be one node. The labels follow a logistic (or linear) model of a few
columns plus noise, so the models in the notebooks learn something but not everything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _write(case: str, name: str, frame: pd.DataFrame) -> None:
    folder = HERE / case
    folder.mkdir(exist_ok=True)
    path = folder / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


# --- churn_readonly -----------------------------------------------------------------------------

def churn_readonly() -> None:
    rng = _rng(101)
    n = 500
    tenure = rng.integers(1, 73, n)
    contract = rng.choice(["month-to-month", "one year", "two year"], n, p=[0.55, 0.25, 0.20])
    monthly = np.round(rng.normal(65, 22, n).clip(18, 120), 2)
    calls = rng.poisson(1.4, n)
    senior = (rng.random(n) < 0.16).astype(int)
    payment = rng.choice(["card", "bank transfer", "electronic check", "mailed check"], n)
    total = np.round(monthly * tenure * rng.normal(1.0, 0.03, n), 2)
    z = (-1.0 - 0.045 * tenure + 0.018 * (monthly - 65) + 0.45 * calls + 0.5 * senior
         + np.where(contract == "month-to-month", 1.1, np.where(contract == "one year", -0.2, -0.9))
         + np.where(payment == "electronic check", 0.5, 0.0) + rng.normal(0, 0.8, n))
    churned = (rng.random(n) < _sigmoid(z)).astype(int)
    frame = pd.DataFrame({
        "customer_id": [f"C{10000 + i}" for i in range(n)], "tenure_months": tenure, "contract": contract,
        "payment_method": payment, "monthly_charges": monthly, "total_charges": total,
        "support_calls": calls, "senior": senior, "churned": churned})
    frame.loc[rng.choice(n, 12, replace=False), "total_charges"] = np.nan
    _write("churn_readonly", "customers.csv", frame)
    dictionary = pd.DataFrame({
        "column": ["customer_id", "tenure_months", "contract", "payment_method", "monthly_charges",
                   "total_charges", "support_calls", "senior", "churned", "region"],
        "type": ["string", "int", "category", "category", "float", "float", "int", "bool", "bool", "category"],
        "description": ["customer key", "months since signup", "contract term", "how the customer pays",
                        "current monthly bill", "billed to date", "calls to support in the last 90 days",
                        "customer is 65 or older", "left within 30 days of the snapshot",
                        "sales region (dropped in 2023)"]})
    _write("churn_readonly", "data_dictionary.csv", dictionary)


# --- credit_decoy_holdout -----------------------------------------------------------------------

def _applications(rng: np.random.Generator, n: int, start: str, days: int, first_id: int) -> pd.DataFrame:
    age = rng.integers(21, 70, n)
    income = np.round(rng.lognormal(10.9, 0.45, n), -2)
    loan = np.round(rng.lognormal(9.6, 0.6, n), -2)
    score = rng.normal(680, 60, n).clip(450, 850).round().astype(int)
    employment = rng.integers(0, 30, n)
    home = rng.choice(["rent", "mortgage", "own"], n, p=[0.45, 0.40, 0.15])
    term = rng.choice([12, 24, 36, 60], n)
    z = (-2.6 + 6.0 * loan / income - 0.025 * (score - 680) - 0.05 * employment + 0.02 * (term - 36)
         + np.where(home == "rent", 0.6, 0.0) + rng.normal(0, 0.4, n))
    defaulted = (rng.random(n) < _sigmoid(z)).astype(int)
    dates = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days, n), unit="D")
    frame = pd.DataFrame({
        "application_id": [f"A{first_id + i}" for i in range(n)], "application_date": dates.strftime("%Y-%m-%d"),
        "branch_id": rng.integers(1, 13, n), "age": age, "income": income, "loan_amount": loan,
        "term_months": term, "credit_score": score, "employment_years": employment,
        "home_ownership": home, "defaulted": defaulted})
    frame.loc[rng.choice(n, max(3, n // 60), replace=False), "income"] = np.nan
    return frame


def credit_decoy_holdout() -> None:
    rng = _rng(202)
    _write("credit_decoy_holdout", "applications.csv", _applications(rng, 600, "2023-01-01", 640, 500000))
    _write("credit_decoy_holdout", "applications_2024q4.csv",
           _applications(rng, 220, "2024-10-01", 92, 600000))
    _write("credit_decoy_holdout", "branches.csv", pd.DataFrame({
        "branch_id": range(1, 13),
        "branch_name": ["Harbour St", "Mill Lane", "Central", "Airport Rd", "Old Town", "Riverside",
                        "North Gate", "Station Sq", "Parkview", "Eastfield", "Hillcrest", "Westbrook"],
        "region": ["south", "south", "central", "east", "central", "west", "north", "central", "west",
                   "east", "north", "west"],
        "opened_year": [1998, 2004, 1987, 2011, 1992, 2015, 2001, 1995, 2019, 2008, 2013, 2006]}))


# --- retail_merge_concat ------------------------------------------------------------------------

def retail_merge_concat() -> None:
    rng = _rng(303)
    stores = pd.DataFrame({"store_id": range(1, 9),
                           "size_sqm": [850, 1200, 640, 2100, 980, 1500, 720, 1750],
                           "format": ["urban", "suburban", "urban", "hyper", "suburban", "hyper", "urban",
                                      "suburban"],
                           "city": ["Leeds", "York", "Leeds", "Bradford", "Hull", "Sheffield", "York", "Hull"]})
    size = dict(zip(stores.store_id, stores.size_sqm, strict=True))
    rows = []
    for store in stores.store_id:
        for week in range(1, 53):
            promo = rng.random() < 0.2
            price = round(float(rng.normal(4.2, 0.35)) * (0.85 if promo else 1.0), 2)
            temp = round(float(12 + 9 * np.sin((week - 14) / 52 * 2 * np.pi) + rng.normal(0, 2.5)), 1)
            units = max(0, int(rng.normal(0.25 * size[store] - 60 * price + 4 * temp + (90 if promo else 0), 35)))
            rows.append((store, week, price, temp, units, promo))
    sales = pd.DataFrame(rows, columns=["store_id", "week", "price", "temperature", "units", "promo"])
    promos = sales[sales.promo][["store_id", "week"]].assign(
        promo_type=lambda d: rng.choice(["flyer", "tv", "in-store"], len(d)), promo_flag=1)
    sales = sales.drop(columns="promo")
    _write("retail_merge_concat", "sales_2023h1.csv", sales[sales.week <= 26])
    _write("retail_merge_concat", "sales_2023h2.csv", sales[sales.week > 26])
    _write("retail_merge_concat", "stores.csv", stores)
    _write("retail_merge_concat", "promotions.csv", promos)


# --- claims_inplace -----------------------------------------------------------------------------

def claims_inplace() -> None:
    rng = _rng(404)
    n = 450
    vehicle_age = rng.integers(0, 20, n).astype(float)
    driver_age = rng.integers(18, 85, n).astype(float)
    mileage = np.round(rng.normal(12000, 4000, n).clip(1000, 40000), -2)
    prior = rng.poisson(0.4, n)
    amount = np.round(rng.lognormal(7.6, 0.8, n), 2)
    policy = rng.choice(["third party", "comprehensive", "fleet"], n, p=[0.35, 0.55, 0.10])
    z = (-2.6 + 1.5 * prior + 1.2 * (amount > 4000) - 0.04 * (driver_age - 45) + 0.1 * vehicle_age
         + np.where(policy == "fleet", 1.0, 0.0) + rng.normal(0, 0.4, n))
    fraud = (rng.random(n) < _sigmoid(z)).astype(int)
    frame = pd.DataFrame({
        "ClaimID": [f"CL{70000 + i}" for i in range(n)], "PolicyType": policy, "VehicleAge": vehicle_age,
        "DriverAge": driver_age, "AnnualMileage": mileage, "PriorClaims": prior, "ClaimAmount": amount,
        "AdjusterNotes": rng.choice(["", "photos pending", "police report attached", "witness statement"], n),
        "SuspectedFraud": fraud})
    for column, count in (("VehicleAge", 25), ("DriverAge", 18), ("AnnualMileage", 30)):
        frame.loc[rng.choice(n, count, replace=False), column] = np.nan
    frame = pd.concat([frame, frame.iloc[[5, 17, 42, 230]]], ignore_index=True)  # re-sent claims
    _write("claims_inplace", "claims.csv", frame)
    _write("claims_inplace", "imputation_defaults.csv", pd.DataFrame({
        "column": ["vehicle_age", "driver_age", "annual_mileage"], "value": [7.0, 44.0, 11800.0],
        "source": ["actuarial table 2023", "actuarial table 2023", "fleet survey 2022"]}))


# --- fraud_pipeline_report ----------------------------------------------------------------------

def fraud_pipeline_report() -> None:
    rng = _rng(505)
    n = 600
    amount = np.round(rng.lognormal(3.6, 1.0, n), 2)
    category = rng.choice(["grocery", "electronics", "travel", "fuel", "gaming", "fashion"], n)
    channel = rng.choice(["pos", "online", "atm"], n, p=[0.55, 0.35, 0.10])
    hour = rng.integers(0, 24, n)
    age_days = rng.integers(5, 4000, n).astype(float)
    n24 = rng.poisson(2.0, n)
    country = (rng.random(n) < 0.92).astype(int)
    z = (-4.0 + 0.8 * np.log1p(amount) - 2.2 * country + 0.45 * n24 - 0.0012 * age_days
         + np.where(channel == "online", 1.2, 0.0) + np.where(np.isin(category, ["electronics", "gaming"]), 1.2, 0)
         + np.where((hour < 5), 1.0, 0.0) + rng.normal(0, 0.3, n))
    fraud = (rng.random(n) < _sigmoid(z)).astype(int)
    frame = pd.DataFrame({
        "txn_id": [f"T{900000 + i}" for i in range(n)], "amount": amount, "merchant_category": category,
        "channel": channel, "hour": hour, "country_match": country, "account_age_days": age_days,
        "n_txn_24h": n24, "is_fraud": fraud})
    frame.loc[rng.choice(n, 20, replace=False), "account_age_days"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "amount"] = np.nan
    _write("fraud_pipeline_report", "transactions.csv", frame)


# --- attrition_helpers --------------------------------------------------------------------------

def attrition_helpers() -> None:
    rng = _rng(606)
    departments = pd.DataFrame({
        "Department": ["Sales", "R&D", "Support", "Finance", "Operations", "Marketing"],
        "Headcount_Budget": [120, 210, 90, 45, 150, 60],
        "Avg_Dept_Income": [5200.0, 6900.0, 3900.0, 6100.0, 4400.0, 5600.0],
        "Remote_Share": [0.2, 0.55, 0.35, 0.4, 0.1, 0.5]})
    n = 520
    dept = rng.choice(departments.Department, n)
    income = np.round(rng.normal(5300, 1500, n).clip(2200, 12000), -1)
    years = rng.integers(0, 25, n)
    overtime = rng.choice(["Yes", "No"], n, p=[0.3, 0.7])
    satisfaction = rng.integers(1, 5, n)
    promo = rng.integers(0, 10, n)
    remote = dict(zip(departments.Department, departments.Remote_Share, strict=True))
    z = (-1.4 - 0.06 * years + 1.0 * (overtime == "Yes") - 0.45 * (satisfaction - 2.5) + 0.12 * promo
         - 0.0002 * (income - 5300) - 1.5 * np.vectorize(remote.get)(dept) + rng.normal(0, 0.6, n))
    left = (rng.random(n) < _sigmoid(z)).astype(int)
    employees = pd.DataFrame({
        "Employee_ID": [f"E{3000 + i}" for i in range(n)], "Department": dept, "Age": rng.integers(20, 62, n),
        "Years_At_Company": years, "Monthly_Income": income, "Overtime": overtime,
        "Satisfaction": satisfaction, "Years_Since_Promotion": promo, "Office_ID": rng.integers(1, 6, n),
        "Left": left})
    _write("attrition_helpers", "employees.csv", employees)
    _write("attrition_helpers", "departments.csv", departments)
    _write("attrition_helpers", "office_locations.csv", pd.DataFrame({
        "Office_ID": [1, 2, 3, 4, 5], "City": ["Manchester", "Dublin", "Lisbon", "Krakow", "Leeds"],
        "Country": ["UK", "Ireland", "Portugal", "Poland", "UK"]}))


# --- credit_gridsearch --------------------------------------------------------------------------

def credit_gridsearch() -> None:
    rng = _rng(707)
    n = 480
    income = np.round(rng.lognormal(11.0, 0.4, n), -2)
    loan = np.round(rng.lognormal(12.0, 0.5, n), -3)
    value = np.round(loan * rng.uniform(1.1, 2.5, n), -3)
    history = rng.integers(0, 35, n)
    dependents = rng.integers(0, 5, n)
    self_employed = (rng.random(n) < 0.18).astype(int)
    z = (-0.8 + 3.0 * (loan / value - 0.6) + 0.25 * (loan / income / 4 - 1) - 0.06 * history
         + 0.15 * dependents + 0.5 * self_employed + rng.normal(0, 0.7, n))
    default = (rng.random(n) < _sigmoid(z)).astype(int)
    _write("credit_gridsearch", "loans.csv", pd.DataFrame({
        "loan_id": [f"L{20000 + i}" for i in range(n)], "income": income, "loan_amount": loan,
        "property_value": value, "credit_history_years": history, "dependents": dependents,
        "self_employed": self_employed, "default": default}))


# --- marketing_randomsearch ---------------------------------------------------------------------

def marketing_randomsearch() -> None:
    rng = _rng(808)
    n = 560
    age = rng.integers(18, 80, n)
    income = np.round(rng.normal(48000, 15000, n).clip(12000, 150000), -2)
    recency = rng.integers(1, 365, n)
    frequency = rng.poisson(6, n)
    monetary = np.round(frequency * rng.lognormal(3.4, 0.5, n), 2)
    channel = rng.choice(["email", "sms", "direct mail"], n, p=[0.6, 0.25, 0.15])
    opens = rng.binomial(10, 0.3, n)
    z = (-1.6 - 0.012 * recency + 0.2 * frequency + 0.35 * opens + 0.00002 * (income - 48000)
         + np.where(channel == "sms", 0.6, 0.0) + 0.9 * ((age > 30) & (age < 50)) + rng.normal(0, 0.3, n))
    responded = (rng.random(n) < _sigmoid(z)).astype(int)
    _write("marketing_randomsearch", "campaign_responses.csv", pd.DataFrame({
        "customer_id": [f"M{40000 + i}" for i in range(n)], "age": age, "income": income,
        "recency_days": recency, "frequency": frequency, "monetary": monetary, "channel": channel,
        "email_opens": opens, "responded": responded}))


# --- cv_readmission -----------------------------------------------------------------------------

def cv_readmission() -> None:
    rng = _rng(909)
    n = 500
    age = rng.integers(18, 95, n)
    stay = rng.integers(1, 15, n)
    procedures = rng.poisson(1.5, n)
    medications = rng.poisson(14, n)
    diagnoses = rng.integers(1, 10, n)
    prior = rng.poisson(0.7, n)
    emergency = (rng.random(n) < 0.45).astype(int)
    insulin = (rng.random(n) < 0.3).astype(int)
    z = (-2.6 + 0.03 * (age - 60) + 0.12 * stay + 0.07 * (medications - 14) + 0.15 * diagnoses + 0.9 * prior
         + 0.7 * emergency + 0.4 * insulin + rng.normal(0, 0.4, n))
    readmitted = (rng.random(n) < _sigmoid(z)).astype(int)
    _write("cv_readmission", "patients.csv", pd.DataFrame({
        "patient_id": [f"P{100000 + i}" for i in range(n)], "age": age, "length_of_stay": stay,
        "num_procedures": procedures, "num_medications": medications, "num_diagnoses": diagnoses,
        "prior_admissions": prior, "emergency_admission": emergency, "on_insulin": insulin,
        "readmitted_30d": readmitted}))


# --- churn_joblib_pickle ------------------------------------------------------------------------

def _subscribers(rng: np.random.Generator, n: int, first_id: int) -> pd.DataFrame:
    plan = rng.choice(["prepaid", "basic", "unlimited"], n, p=[0.3, 0.45, 0.25])
    data_gb = np.round(rng.gamma(2.0, 4.0, n), 1)
    minutes = rng.integers(20, 1500, n)
    dropped = rng.poisson(1.2, n)
    tenure = rng.integers(1, 96, n)
    age = rng.integers(18, 80, n)
    z = (-0.9 + 0.35 * dropped - 0.03 * tenure + np.where(plan == "prepaid", 0.8, 0.0)
         - 0.03 * (data_gb - 8) + rng.normal(0, 0.7, n))
    churned = (rng.random(n) < _sigmoid(z)).astype(int)
    return pd.DataFrame({
        "subscriber_id": [f"S{first_id + i}" for i in range(n)], "plan": plan, "data_gb": data_gb,
        "minutes": minutes, "sms": rng.poisson(40, n), "dropped_calls": dropped, "tenure_months": tenure,
        "age": age, "churned": churned})


def churn_joblib_pickle() -> None:
    rng = _rng(1010)
    _write("churn_joblib_pickle", "subscribers.csv", _subscribers(rng, 560, 700000))
    _write("churn_joblib_pickle", "subscribers_march.csv", _subscribers(rng, 200, 800000))


# --- pricing_skops_unrecorded -------------------------------------------------------------------

def _quotes(rng: np.random.Generator, n: int, first_id: int) -> pd.DataFrame:
    value = np.round(rng.lognormal(9.8, 0.5, n), -2)
    driver_age = rng.integers(18, 85, n)
    licensed = np.minimum(driver_age - 17, rng.integers(0, 60, n))
    km = np.round(rng.normal(13000, 4500, n).clip(1500, 45000), -2)
    region = rng.choice(["urban", "suburban", "rural"], n, p=[0.45, 0.35, 0.20])
    prior = rng.poisson(0.35, n)
    premium = (220 + 0.012 * value + 9.0 * np.maximum(0, 30 - driver_age) - 2.5 * licensed + 0.006 * km
               + np.where(region == "urban", 80, np.where(region == "suburban", 30, 0)) + 110 * prior
               + 0.000002 * value * km / 10 + rng.normal(0, 45, n))
    return pd.DataFrame({
        "quote_id": [f"Q{first_id + i}" for i in range(n)], "vehicle_value": value, "driver_age": driver_age,
        "years_licensed": licensed, "annual_km": km, "region": region, "prior_claims": prior,
        "premium": np.round(premium, 2)})


def pricing_skops_unrecorded() -> None:
    rng = _rng(1111)
    _write("pricing_skops_unrecorded", "quotes.csv", _quotes(rng, 520, 300000))
    _write("pricing_skops_unrecorded", "quotes_recent.csv", _quotes(rng, 160, 310000))


# --- xgb_native ---------------------------------------------------------------------------------

def xgb_native() -> None:
    rng = _rng(1212)
    n = 600
    temp = np.round(rng.normal(70, 8, n), 1)
    vibration = np.round(rng.gamma(2.0, 1.5, n), 2)
    pressure = np.round(rng.normal(101, 4, n), 1)
    rpm = rng.integers(900, 3600, n)
    hours = rng.integers(0, 2000, n)
    kind = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    z = (-3.0 + 0.08 * (temp - 70) + 0.5 * (vibration - 3) + 0.0015 * hours
         + np.where(kind == "C", 0.8, 0.0) + 0.6 * ((pressure < 96) | (pressure > 106)) + rng.normal(0, 0.5, n))
    failed = (rng.random(n) < _sigmoid(z)).astype(int)
    _write("xgb_native", "sensor_readings.csv", pd.DataFrame({
        "machine_id": [f"MX{5000 + i}" for i in range(n)], "machine_type": kind, "temperature_c": temp,
        "vibration_mm_s": vibration, "pressure_kpa": pressure, "rpm": rpm, "hours_since_service": hours,
        "failed_within_30d": failed}))


# --- lgb_native ---------------------------------------------------------------------------------

def lgb_native() -> None:
    rng = _rng(1313)
    hoods = pd.DataFrame({
        "neighborhood": ["Ashby", "Brook Green", "Castleton", "Dunmore", "Elm Park", "Fairview", "Glenside"],
        "median_income": [52000, 78000, 41000, 95000, 63000, 58000, 70500],
        "school_rating": [6.1, 8.4, 5.2, 9.1, 7.0, 6.6, 7.8],
        "crime_index": [42.0, 18.5, 55.3, 12.1, 30.2, 35.8, 22.4]})
    n = 540
    hood = rng.choice(hoods.neighborhood, n)
    sqft = rng.normal(1650, 520, n).clip(500, 4200).round().astype(int)
    bedrooms = np.clip((sqft / 550 + rng.normal(0, 0.7, n)).round(), 1, 7).astype(int)
    bathrooms = np.clip((bedrooms * 0.6 + rng.normal(0, 0.4, n)).round(), 1, 5).astype(int)
    year = rng.integers(1920, 2023, n)
    lot = np.round(rng.lognormal(8.4, 0.4, n), -1)
    garage = rng.integers(0, 3, n)
    info = hoods.set_index("neighborhood")
    price = (40000 + 120 * sqft + 9000 * bathrooms + 300 * (year - 1950) + 4 * lot + 12000 * garage
             + 1.1 * info.loc[hood, "median_income"].to_numpy() + 9000 * info.loc[hood, "school_rating"].to_numpy()
             - 800 * info.loc[hood, "crime_index"].to_numpy() + rng.normal(0, 25000, n))
    _write("lgb_native", "houses.csv", pd.DataFrame({
        "house_id": [f"H{1000 + i}" for i in range(n)], "neighborhood": hood, "sqft": sqft,
        "bedrooms": bedrooms, "bathrooms": bathrooms, "year_built": year, "lot_size": lot,
        "garage_spaces": garage, "sale_price": np.round(price, -2)}))
    _write("lgb_native", "neighborhoods.csv", hoods)


# --- polars_duckdb_sql --------------------------------------------------------------------------

def polars_duckdb_sql() -> None:
    rng = _rng(1414)
    n = 420
    plan = rng.choice(["free", "basic"], n, p=[0.7, 0.3])
    age = rng.integers(18, 70, n)
    engagement = rng.gamma(2.0, 1.0, n)
    signup = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    users = pd.DataFrame({"user_id": np.arange(1, n + 1), "signup_date": signup.strftime("%Y-%m-%d"),
                          "country": rng.choice(["DE", "FR", "NL", "ES", "IT"], n), "plan": plan, "age": age})
    session_rows, event_rows = [], []
    exports_rate = rng.gamma(1.5, 1.0, n)
    for uid in range(1, n + 1):
        for _ in range(rng.poisson(2 + 4 * engagement[uid - 1])):
            session_rows.append((len(session_rows) + 1, uid, round(float(rng.gamma(2.0, 6.0)), 1),
                                 int(rng.integers(1, 30)), str(rng.choice(["web", "ios", "android"]))))
        for _ in range(rng.poisson(1 + 2 * engagement[uid - 1])):
            kind = rng.choice(["export", "share", "invite", "error"], p=[0.3, 0.3, 0.2, 0.2])
            if kind == "export" and rng.random() < exports_rate[uid - 1] / 3:
                event_rows.append((len(event_rows) + 1, uid, "export"))
            event_rows.append((len(event_rows) + 1, uid, str(kind)))
    sessions = pd.DataFrame(session_rows, columns=["session_id", "user_id", "duration_min", "pages", "device"])
    events = pd.DataFrame(event_rows, columns=["event_id", "user_id", "event_type"])
    n_exports = events[events.event_type == "export"].groupby("user_id").size().reindex(users.user_id, fill_value=0)
    z = (-2.2 + 0.6 * engagement + 0.35 * n_exports.to_numpy() + 0.7 * (plan == "basic")
         - 0.01 * (age - 35) + rng.normal(0, 0.5, n))
    users["upgraded"] = (rng.random(n) < _sigmoid(z)).astype(int)
    _write("polars_duckdb_sql", "users.csv", users)
    _write("polars_duckdb_sql", "sessions.parquet", sessions)
    _write("polars_duckdb_sql", "events.csv", events)
    _write("polars_duckdb_sql", "plan_prices.csv", pd.DataFrame({
        "plan": ["free", "basic", "pro", "team"], "monthly_price": [0.0, 7.99, 15.99, 39.0]}))


# --- versions_two_notebooks ---------------------------------------------------------------------

def versions_two_notebooks() -> None:
    rng = _rng(1515)
    agents = pd.DataFrame({"agent_id": range(1, 16),
                           "team": rng.choice(["billing", "technical", "accounts"], 15),
                           "experience_years": rng.integers(0, 12, 15),
                           "csat_avg": np.round(rng.uniform(3.2, 4.9, 15), 2)})
    n = 540
    agent = rng.integers(1, 16, n)
    channel = rng.choice(["email", "chat", "phone"], n, p=[0.5, 0.3, 0.2])
    tier = rng.choice(["standard", "gold", "platinum"], n, p=[0.7, 0.2, 0.1])
    response = np.round(rng.gamma(2.0, 3.0, n), 1)
    replies = rng.poisson(3, n)
    sentiment = np.round(rng.normal(0.0, 0.5, n).clip(-1, 1), 3)
    reopened = (rng.random(n) < 0.12).astype(int)
    exp = agents.set_index("agent_id").loc[agent, "experience_years"].to_numpy()
    z = (-1.6 + 0.08 * response + 0.2 * replies - 1.2 * sentiment + 0.9 * reopened - 0.12 * exp
         + np.where(tier == "platinum", 0.7, 0.0) + rng.normal(0, 0.5, n))
    escalated = (rng.random(n) < _sigmoid(z)).astype(int)
    tickets = pd.DataFrame({
        "ticket_id": [f"TK{60000 + i}" for i in range(n)], "agent_id": agent, "channel": channel,
        "customer_tier": tier, "first_response_hours": response, "n_replies": replies,
        "sentiment_score": sentiment, "reopened": reopened, "escalated": escalated})
    tickets.loc[rng.choice(n, 9, replace=False), "first_response_hours"] = np.nan
    _write("versions_two_notebooks", "tickets.csv", tickets)
    _write("versions_two_notebooks", "agents.csv", agents)


# --- wine_voting_multiclass ---------------------------------------------------------------------

def wine_voting_multiclass() -> None:
    rng = _rng(1616)
    n = 480
    alcohol = np.round(rng.normal(10.5, 1.1, n), 1)
    volatile = np.round(rng.gamma(4.0, 0.13, n), 3)
    sulphates = np.round(rng.normal(0.65, 0.15, n).clip(0.3, 1.5), 2)
    citric = np.round(rng.uniform(0, 0.7, n), 2)
    sugar = np.round(rng.gamma(2.0, 1.3, n), 1)
    chlorides = np.round(rng.gamma(5.0, 0.017, n), 3)
    sulfur = rng.integers(3, 70, n)
    ph = np.round(rng.normal(3.3, 0.15, n), 2)
    density = np.round(0.9968 - 0.0008 * (alcohol - 10.5) + 0.0004 * (sugar - 2.6) + rng.normal(0, 0.0005, n), 5)
    score = (1.1 * (alcohol - 10.5) - 3.0 * (volatile - 0.52) + 2.2 * (sulphates - 0.65) + 0.8 * citric
             + rng.normal(0, 0.8, n))
    label = np.where(score > 0.9, "high", np.where(score < -0.6, "low", "medium"))
    _write("wine_voting_multiclass", "wine_quality.csv", pd.DataFrame({
        "fixed_acidity": np.round(rng.normal(8.3, 1.6, n), 1), "volatile_acidity": volatile,
        "citric_acid": citric, "residual_sugar": sugar, "chlorides": chlorides,
        "free_sulfur_dioxide": sulfur, "density": density, "pH": ph, "sulphates": sulphates,
        "alcohol": alcohol, "quality": label}))


ALL = (churn_readonly, credit_decoy_holdout, retail_merge_concat, claims_inplace, fraud_pipeline_report,
       attrition_helpers, credit_gridsearch, marketing_randomsearch, cv_readmission, churn_joblib_pickle,
       pricing_skops_unrecorded, xgb_native, lgb_native, polars_duckdb_sql, versions_two_notebooks,
       wine_voting_multiclass)

if __name__ == "__main__":
    for make in ALL:
        make()
        print("wrote", make.__name__)
