"""Generates dashboards/costspan.json, the costspan Grafana dashboard, with grafana-foundation-sdk.

    python collector-config/grafana/dashboard.py      # rewrites dashboards/costspan.json

Edit this file, not the JSON: tests/collector checks that the committed JSON is what this script writes, and runs
every query in it against a real Prometheus that scraped costspan's metrics. Metric names are the ones Prometheus
gets through the collector's prometheus exporter (docs/backends.md).

Every panel reads the `datasource` variable (any Prometheus datasource; the provisioned one by default), and
`__inputs` declares it for Grafana's import, so the JSON imports into any Grafana as it is. The gen_ai.* metrics are
the GenAI semantic conventions' names, which another instrumentation of the same SDK records too: their selectors
take costspan's own series (its instrumentation scope), so a second instrumentation never doubles a panel.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode, VariableOption

OUTPUT = Path(__file__).parent / "dashboards" / "costspan.json"
DATASOURCE = "datasource"
# Grafana's import replaces ${DS_PROMETHEUS} with the datasource picked for this input.
IMPORT_INPUT = "DS_PROMETHEUS"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE}}}")

SCOPE = "costspan.instrumentor"
"""costspan's instrumentation scope (otel_scope_name): the mark of its own gen_ai.* series."""
COST = "costspan_cost_USD_total"
TOKENS = "costspan_tokens_total"
TOKEN_USAGE_SUM = "gen_ai_client_token_usage_sum"
DURATION_BUCKET = "gen_ai_client_operation_duration_seconds_bucket"
FIRST_CHUNK_BUCKET = "gen_ai_client_operation_time_to_first_chunk_seconds_bucket"
BLOCKED = "costspan_budget_blocked_total"
MODEL = "gen_ai_provider_name, gen_ai_request_model"
MODEL_LEGEND = "{{gen_ai_provider_name}} {{gen_ai_request_model}}"


def own(metric: str, *matchers: str) -> str:
    """A selector of costspan's own series of a gen_ai.* metric."""
    scope = f'otel_scope_name="{SCOPE}"'
    return metric + "{" + ", ".join((scope, *matchers)) + "}"


def increase(selector: str, window: str) -> str:
    """What each series of a counter added over the window, exactly (see prometheus/rules/costspan.yml): its last
    value minus its last value before the window, or all of it when it began inside the window, which increase()
    would drop."""
    last = f"last_over_time({selector}[{window}])"
    return f"({last} - last_over_time({selector}[1h] offset {window})) >= 0 or {last}"


def query(ref_id: str, expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    target = prometheus.Dataquery().ref_id(ref_id).expr(expr).datasource(PROMETHEUS)
    if legend:
        target = target.legend_format(legend)
    return target.instant() if instant else target.range().exemplar(True)


def spend_total() -> stat.Panel:
    return (
        stat.Panel()
        .title("Spend")
        .description("USD spent on LLM calls in the dashboard's time range.")
        .datasource(PROMETHEUS)
        .with_target(query("A", f"sum({increase(COST, '$__range')}) or vector(0)", instant=True))
        .unit("currencyUSD")
        .decimals(2)
        .graph_mode(BigValueGraphMode.NONE)
        .span(6)
        .height(6)
    )


def spend_over_time() -> timeseries.Panel:
    # One bar per interval: the bars add up to the range's spend, exactly.
    return (
        timeseries.Panel()
        .title("Spend per model and provider")
        .description("USD spent in each interval. Exemplars link a bar to the traces of its calls.")
        .datasource(PROMETHEUS)
        .with_target(query("A", f"sum by ({MODEL}) ({increase(COST, '$__interval')})", MODEL_LEGEND))
        .unit("currencyUSD")
        .draw_style(GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(common.StackingConfig().mode(StackingMode.NORMAL))
        .legend(_table_legend())
        .span(18)
        .height(9)
    )


def spend_by(title: str, description: str, by: str, selector: str, legend: str) -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(query("A", f"sort_desc(sum by ({by}) ({increase(selector, '$__range')}))", legend, instant=True))
        .unit("currencyUSD")
        .decimals(2)
        .orientation(VizOrientation.HORIZONTAL)
        .span(12)
        .height(8)
    )


def tokens_by_type() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Tokens by type")
        .description(
            "Input (cached included) and output tokens, and the cache reads, cache writes and reasoning tokens "
            "within them, per interval."
        )
        .datasource(PROMETHEUS)
        .with_target(
            query(
                "A",
                f"sum by (gen_ai_token_type) ({increase(own(TOKEN_USAGE_SUM), '$__interval')})",
                "{{gen_ai_token_type}}",
            )
        )
        .with_target(
            query("B", f"sum by (gen_ai_token_type) ({increase(TOKENS, '$__interval')})", "{{gen_ai_token_type}}")
        )
        .unit("short")
        .draw_style(GraphDrawStyle.BARS)
        .fill_opacity(80)
        .legend(_table_legend())
        .span(16)
        .height(8)
    )


def cache_hit_share() -> stat.Panel:
    cached = increase(f'{TOKENS}{{gen_ai_token_type="cache_read"}}', "$__range")
    inputs = increase(own(TOKEN_USAGE_SUM, 'gen_ai_token_type="input"'), "$__range")
    return (
        stat.Panel()
        .title("Cache-hit share")
        .description("Share of input tokens read from the provider's prompt cache, per provider.")
        .datasource(PROMETHEUS)
        .with_target(
            query(
                "A",
                f"sum by (gen_ai_provider_name) ({cached}) / sum by (gen_ai_provider_name) ({inputs})",
                "{{gen_ai_provider_name}}",
                instant=True,
            )
        )
        .unit("percentunit")
        .decimals(1)
        .graph_mode(BigValueGraphMode.NONE)
        .span(8)
        .height(8)
    )


def quantiles(title: str, description: str, bucket: str) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit("s")
        .legend(_table_legend())
        .span(12)
        .height(8)
    )
    for ref_id, q in (("A", "0.5"), ("B", "0.95"), ("C", "0.99")):
        expr = f"histogram_quantile({q}, sum by (le, {MODEL}) ({increase(own(bucket), '$__rate_interval')}))"
        panel = panel.with_target(query(ref_id, expr, f"p{q[2:].ljust(2, '0')} {MODEL_LEGEND}"))
    return panel


def model_budgets() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Daily budget used per model")
        .description(
            "Spend of the last 24 hours over each model's daily budget (prometheus/rules/budgets.yml); "
            "the alerts fire at 50, 80 and 100%."
        )
        .datasource(PROMETHEUS)
        .with_target(query("A", "costspan:budget_used:ratio_1d_by_model", MODEL_LEGEND))
        .unit("percentunit")
        .thresholds(_budget_thresholds())
        .legend(_table_legend())
        .span(12)
        .height(8)
    )


def costspan_budgets() -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title("costspan budgets")
        .description(
            "Settled spend over the limit of each costspan.Budget in its current window (it starts again from 0 "
            "with each window), per user for a budget scoped by user.id. The alerts fire at 80 and 100%; a "
            "blocking budget refuses calls before it reaches 100% (see Calls refused by budgets)."
        )
        .datasource(PROMETHEUS)
        .with_target(query("A", "costspan:budget_used:ratio", "{{costspan_budget_name}} {{user_id}}", instant=True))
        .unit("percentunit")
        .min(0)
        .max(1)
        .thresholds(_budget_thresholds())
        .orientation(VizOrientation.HORIZONTAL)
        .span(12)
        .height(8)
    )


def budget_refusals() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Calls refused by budgets")
        .description("Calls each costspan.Budget refused before they were sent, or streams it cut, per interval.")
        .datasource(PROMETHEUS)
        .with_target(
            query(
                "A",
                f"sum by (costspan_budget_name) ({increase(BLOCKED, '$__interval')})",
                "{{costspan_budget_name}}",
            )
        )
        .unit("short")
        .draw_style(GraphDrawStyle.BARS)
        .fill_opacity(80)
        .legend(_table_legend())
        .span(12)
        .height(7)
    )


def error_ratio() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Error ratio per model")
        .description(
            "Share of calls that failed in the last 10 minutes (calls a budget refused or cut are not counted)."
        )
        .datasource(PROMETHEUS)
        .with_target(query("A", "costspan:error_ratio:10m_by_model", MODEL_LEGEND))
        .unit("percentunit")
        .legend(_table_legend())
        .span(12)
        .height(7)
    )


def _table_legend() -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .display_mode(LegendDisplayMode.TABLE)
        .placement(LegendPlacement.RIGHT)
        .show_legend(True)
        .calcs(["sum"])
    )


def _budget_thresholds() -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [
                Threshold(value=None, color="green"),
                Threshold(value=0.5, color="yellow"),
                Threshold(value=0.8, color="orange"),
                Threshold(value=1.0, color="red"),
            ]
        )
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    """Which Prometheus the panels read: on import, the one picked for the input; provisioned, the default one."""
    return (
        dashboard.DatasourceVariable(DATASOURCE)
        .label("Prometheus")
        .type("prometheus")
        .current(VariableOption(text="Prometheus", value=f"${{{IMPORT_INPUT}}}", selected=True))
    )


IMPORT_INPUTS = [
    {
        "name": IMPORT_INPUT,
        "label": "Prometheus",
        "description": "The Prometheus that scrapes costspan's metrics (through the collector)",
        "type": "datasource",
        "pluginId": "prometheus",
        "pluginName": "Prometheus",
    }
]


def build() -> dict[str, object]:
    board = (
        dashboard.Dashboard("costspan: LLM spend")
        .uid("costspan")
        .description("What every LLM call cost, from costspan's metrics.")
        .tags(["costspan", "llm", "cost"])
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(datasource_variable())
        .with_row(dashboard.Row("Spend"))
        .with_panel(spend_total())
        .with_panel(spend_over_time())
        .with_panel(
            spend_by("Spend by model", "USD per provider and model in the time range.", MODEL, COST, MODEL_LEGEND)
        )
        .with_panel(
            spend_by(
                "Spend by user",
                'USD per user in the time range (needs metric_attributes=["user.id"]).',
                "user_id",
                f'{COST}{{user_id!=""}}',
                "{{user_id}}",
            )
        )
        .with_row(dashboard.Row("Tokens"))
        .with_panel(tokens_by_type())
        .with_panel(cache_hit_share())
        .with_row(dashboard.Row("Latency"))
        .with_panel(quantiles("Operation duration", "Quantiles of gen_ai.client.operation.duration.", DURATION_BUCKET))
        .with_panel(
            quantiles(
                "Time to first chunk",
                "Quantiles of gen_ai.client.operation.time_to_first_chunk (streams).",
                FIRST_CHUNK_BUCKET,
            )
        )
        .with_row(dashboard.Row("Budgets and errors"))
        .with_panel(model_budgets())
        .with_panel(costspan_budgets())
        .with_panel(budget_refusals())
        .with_panel(error_ratio())
    )
    encoded: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return {"__inputs": IMPORT_INPUTS, **encoded}


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
