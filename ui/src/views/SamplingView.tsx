import { useState } from "react";
import { createSamplingRule, deleteSamplingRule, getSamplingRules, updateSamplingRule, type SamplingRule } from "../api";
import { ErrorBox, Loading, useRowKeys } from "../components";
import { setParams, useLocation } from "../route";
import { fmtTime } from "../time";
import { useAsync } from "../useAsync";

const BLANK: SamplingRule = {
  RuleName: "",
  ResourceARN: "*",
  Priority: 100,
  FixedRate: 0.05,
  ReservoirSize: 1,
  ServiceName: "*",
  ServiceType: "*",
  Host: "*",
  HTTPMethod: "*",
  URLPath: "*",
  Version: 1,
};

/// Sampling rules: list, create, edit, delete. The server validates each rule as AWS
/// does and its error is shown beside the form.
export function SamplingView() {
  const { params } = useLocation();
  const editing = params.get("edit");
  const res = useAsync(() => getSamplingRules(), []);
  const records = [...(res.data?.SamplingRuleRecords ?? [])].sort((a, b) => (a.SamplingRule?.Priority ?? 0) - (b.SamplingRule?.Priority ?? 0));
  const keys = useRowKeys(records.length, (i) => setParams({ edit: records[i]?.SamplingRule?.RuleName ?? "" }));
  const current = records.find((r) => r.SamplingRule?.RuleName === editing)?.SamplingRule;
  return (
    <div className="view">
      <div className="toolbar">
        <h2>Sampling rules</h2>
        <button data-testid="new-rule" onClick={() => setParams({ edit: "new" })}>
          New rule
        </button>
      </div>
      <p className="hint">
        SDKs poll these rules through the daemon port. Each rule keeps <em>reservoir</em> traces per second, then samples <em>rate</em> of the rest;
        the lowest priority number that matches wins, <code>Default</code> last.
      </p>
      {editing && (editing === "new" || current) && (
        <RuleForm
          rule={editing === "new" ? undefined : current}
          onDone={() => {
            setParams({ edit: null });
            res.reload();
          }}
        />
      )}
      {res.error ? (
        <ErrorBox error={res.error} retry={res.reload} />
      ) : !res.data ? (
        <Loading what="sampling rules" />
      ) : (
        <table className="grid" data-testid="rules-table">
          <thead>
            <tr>
              <th>Priority</th>
              <th>Name</th>
              <th>Reservoir</th>
              <th>Rate</th>
              <th>Service</th>
              <th>Type</th>
              <th>Host</th>
              <th>Method</th>
              <th>URL path</th>
              <th>Modified</th>
              <th />
            </tr>
          </thead>
          <tbody {...keys.body}>
            {records.map(({ SamplingRule: r, ModifiedAt }, i) =>
              r ? (
                <tr key={r.RuleName} data-testid="rule-row" data-name={r.RuleName} {...keys.row(i)}>
                  <td>{r.Priority}</td>
                  <td>{r.RuleName}</td>
                  <td>{r.ReservoirSize}/s</td>
                  <td data-testid="rule-rate">{(r.FixedRate * 100).toFixed(1)} %</td>
                  <td>{r.ServiceName}</td>
                  <td>{r.ServiceType}</td>
                  <td>{r.Host}</td>
                  <td>{r.HTTPMethod}</td>
                  <td>{r.URLPath}</td>
                  <td>{fmtTime(ModifiedAt)}</td>
                  <td className="actions">
                    <button data-testid="edit-rule" onClick={() => setParams({ edit: r.RuleName ?? "" })}>
                      Edit
                    </button>
                    {r.RuleName !== "Default" && (
                      <button
                        className="danger"
                        data-testid="delete-rule"
                        onClick={async () => {
                          if (!confirm(`Delete rule ${r.RuleName}?`)) return;
                          try {
                            await deleteSamplingRule(r.RuleName ?? "");
                          } finally {
                            res.reload();
                          }
                        }}
                      >
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              ) : null,
            )}
          </tbody>
        </table>
      )}
    </div>
  );
}

const FIELDS: [keyof SamplingRule, string, "text" | "number"][] = [
  ["RuleName", "Name", "text"],
  ["Priority", "Priority (1–9999)", "number"],
  ["ReservoirSize", "Reservoir (traces/s)", "number"],
  ["FixedRate", "Rate (0–1)", "number"],
  ["ServiceName", "Service name", "text"],
  ["ServiceType", "Service type", "text"],
  ["Host", "Host", "text"],
  ["HTTPMethod", "HTTP method", "text"],
  ["URLPath", "URL path", "text"],
  ["ResourceARN", "Resource ARN", "text"],
];

function RuleForm({ rule, onDone }: { rule?: SamplingRule; onDone: () => void }) {
  const [r, setR] = useState<SamplingRule>(rule ?? BLANK);
  const [error, setError] = useState<unknown>(null);
  const isDefault = rule?.RuleName === "Default";
  return (
    <form
      className="card form grid-form"
      data-testid="rule-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          if (rule) {
            const { RuleARN: _arn, Version: _v, Attributes: _a, ...update } = r;
            await updateSamplingRule(isDefault ? { RuleName: "Default", FixedRate: r.FixedRate, ReservoirSize: r.ReservoirSize } : update);
          } else {
            await createSamplingRule({ ...r, RuleARN: undefined });
          }
          onDone();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h3>{rule ? `Edit ${rule.RuleName}` : "New sampling rule"}</h3>
      {FIELDS.map(([k, label, type]) => {
        const locked = (k === "RuleName" && !!rule) || (isDefault && k !== "FixedRate" && k !== "ReservoirSize") || (k === "ResourceARN" && !!rule);
        return (
          <label key={k}>
            {label}
            <input
              data-testid={`rule-${k}`}
              type={type}
              step={type === "number" ? "any" : undefined}
              value={String(r[k] ?? "")}
              disabled={locked}
              onChange={(e) => setR({ ...r, [k]: type === "number" ? Number(e.target.value) : e.target.value })}
            />
          </label>
        );
      })}
      {error ? <ErrorBox error={error} /> : null}
      <div className="actions">
        <button type="submit" data-testid="rule-save">
          Save
        </button>
        <button type="button" onClick={() => setParams({ edit: null })}>
          Cancel
        </button>
      </div>
    </form>
  );
}
