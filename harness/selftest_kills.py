"""The declared kill table of ``mcp-harness selftest``: which checks each known-bad
implementation must trip (at least these; more may fail as a consequence).

It is product data, not test data: ``selftest`` exits 1 when a declared kill did not happen,
so a check that silently stops failing against its known-bad implementation is reported by the
product itself, in CI and on a user's machine alike. ``tests/test_mutants.py`` asserts the
same table, from the same runs.
"""

from __future__ import annotations

#: Broker defects (:data:`broker.variants.DEFECTS`) -> the scenario checks each must fail.
EXPECTED_KILLS: dict[str, set[str]] = {
    "shared-cache": {
        "MW-02",
        "MW-03",
        "MW-05",
        "MW-07",
        "ISO-05",
        "ISO-09",
        "FX-05",
        "FX-07",
        # the Databricks families (scenarios/databricks-families.scenario.yaml)
        "FAM-02",
        "FAM-03",
        "FAM-04",
        "FAM-05",
        "FAM-07",
    },
    "no-segment-check": {"SEG-01", "SEG-02"},
    "stale-tokens": {
        "EXP-03",
        "EXP-04",
        "EXP-05",
        "EXP-06",
        "EXP-07",
        "DEP-01",
        "DEP-03",
        "DEP-04",
    },
    "leak-id-token": {
        "MW-01",
        "MW-02",
        "MW-03",
        "MW-06",
        "MW-07",
        "ISO-01",
        "ISO-02",
        "ISO-03",
        "ISO-04",
        "ISO-05",
        "ISO-07",
        "ISO-08",
        "ISO-09",
        "FX-07",
        "FX-08",
        "FX-09",
        "SF-01",
        "SF-02",
        "SF-03",
        "SF-04",
        "SF-08",
    },
    "no-reuse": {"EXP-01", "EXP-02"},
    "no-idp-refresh": {"EXP-03", "EXP-04", "FLOW-01", "DEP-01", "DEP-02"},
    "over-scoped": {"MW-04", "MW-05", "FAM-01", "FAM-06"},
    # the MCP authorization rules (scenarios/mcp-authorization.scenario.yaml)
    "no-pkce": {"PK-02", "PK-03", "PK-04"},
    # client ID metadata documents, resource metadata (scenarios/mcp-client-metadata.scenario.yaml)
    "ssrf-client-metadata": {"CIMD-03"},
    "cimd-id-mismatch": {"CIMD-02"},
    "no-cimd": {"CIMD-01", "CIMD-04", "CIMD-05"},
    "no-resource-metadata": {"PR-04", "PR-02"},
    # the MCP authorization rules, continued
    "code-reuse": {"PK-05"},
    "no-consent": {"MC-10", "MC-08"},
    "no-iss": {"PK-08", "MC-10"},
    "no-pkce-metadata": {"MD-05"},
    "no-rotation": {"PK-07"},
    "loose-redirects": {"PK-06"},
    "open-registration": {"DC-04"},
    "strict-dcr": {"DC-01", "DC-03"},
    # the federated exchange flow (scenarios/federated-exchange.scenario.yaml)
    "no-act-claim": {"FX-03", "FX-05"},
    "long-lived-assertion": {"FX-04"},
    "ignores-federated-flow": {"FX-01", "FX-02", "FX-03", "FX-04", "FX-05", "FX-06"},
    # Snowflake session passthrough (scenarios/snowflake-passthrough.scenario.yaml)
    "passthrough-id-token": {
        "SF-01",
        "SF-02",
        "SF-03",
        "SF-04",
        "ROLE-03",
        "ROLE-04",
        "ROLE-06",
        "ROLE-07",
    },
    "no-account-check": {"SF-05", "SF-06", "SF-07"},
    # gateway mode (scenarios/gateway.scenario.yaml, policy, audit-chain)
    "passthrough-client-token": {
        "GW-02",
        "GW-03",
        "GW-04",
        "GW-05",
        "GW-06",
        "GW-10",
        "GW-11",
        "GW-12",
        "SC-01",
        "SC-04",
        "POL-08",
        "POL-10",
        "AUD-03",
        "AUD-04",
    },
    "lax-gateway-tokens": {"GW-01", "GW-07", "GW-08", "GW-09"},
    "no-scope-challenge": {"SC-02", "SC-03"},
    # the policy gate (scenarios/policy.scenario.yaml) and the audit (audit-chain)
    "no-policy": {
        "POL-01",
        "POL-02",
        "POL-03",
        "POL-04",
        "POL-05",
        "POL-06",
        "POL-07",
        "POL-09",
        "POL-10",
        "POL-11",
    },
    "policy-fail-open": {"POL-04", "POL-05"},
    "no-audit": {"POL-03", "POL-11", "AUD-01", "AUD-02", "AUD-03"},
    # Snowflake role scoping (scenarios/snowflake-roles.scenario.yaml)
    "one-role-for-all": {"ROLE-01", "ROLE-02", "ROLE-05"},
}
#: Checks of the platform (the mock workspace as a resource server), not of the broker: no
#: broker defect can fail them; the platform variants of :mod:`mocks.core.sts_variants` do.
PLATFORM_CHECKS = frozenset({"ISO-06", "DEP-05"})

#: Platform variants -> the scenario checks each must fail (run against the good broker).
PLATFORM_KILLS: dict[str, set[str]] = {
    "workspace-accepts-foreign-token": {"ISO-06"},
    "accepts-deprovisioned-user": {"DEP-05"},
}

#: Mock STS variants -> the verify checks (REQUIREMENTS §1-§7) each must trip, under the
#: profile the selftest judges it by (see :data:`harness.selftest.PROFILE_HIDES`).
STS_KILLS: dict[str, set[str]] = {
    "accepts-expired": {"JV-09"},
    "accepts-foreign-audience": {"JV-13"},
    "accepts-alg-none": {"JV-02"},
    "accepts-hs256-public-key": {"JV-03"},
    "ignores-issuer": {"JV-08"},
    "no-issued-token-type": {"TR-03"},
    "401-not-400": {"ER-01"},
    "no-cache-control": {"HT-02"},
    "accepts-get": {"HT-04"},
    "leaks-subject-token": {"ER-05"},
    "500-on-malformed": {"JV-19"},
}
