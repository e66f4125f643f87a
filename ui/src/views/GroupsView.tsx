import { useState } from "react";
import { createGroup, deleteGroup, getGroups, updateGroup, type Group } from "../api";
import { ErrorBox, Loading, useRowKeys } from "../components";
import { link, onLink, setParams, useLocation } from "../route";
import { useAsync } from "../useAsync";

/// Groups: create, edit and delete; the server validates each filter expression and
/// its error is shown beside the form.
export function GroupsView() {
  const { params } = useLocation();
  const editing = params.get("edit");
  const res = useAsync(() => getGroups(), []);
  const groups = (res.data?.Groups ?? []).filter((g) => g.GroupName !== "Default");
  const keys = useRowKeys(groups.length, (i) => setParams({ edit: groups[i]?.GroupName ?? "" }));
  return (
    <div className="view">
      <div className="toolbar">
        <h2>Groups</h2>
        <button data-testid="new-group" onClick={() => setParams({ edit: "new" })}>
          New group
        </button>
      </div>
      <p className="hint">A group is a named filter expression: the service map can be drawn for one, and filters can say group.name = "…".</p>
      {editing && (editing === "new" || groups.some((g) => g.GroupName === editing)) && (
        <GroupForm
          group={editing === "new" ? undefined : groups.find((g) => g.GroupName === editing)}
          onDone={() => {
            setParams({ edit: null });
            res.reload();
          }}
        />
      )}
      {res.error ? (
        <ErrorBox error={res.error} retry={res.reload} />
      ) : !res.data ? (
        <Loading what="groups" />
      ) : groups.length === 0 ? (
        <div className="state empty" data-testid="empty">
          No groups yet besides Default. Create one with <em>New group</em>, e.g. <code>service("checkout") AND fault</code>.
        </div>
      ) : (
        <table className="grid" data-testid="groups-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Filter expression</th>
              <th />
            </tr>
          </thead>
          <tbody {...keys.body}>
            {groups.map((g, i) => {
              const map = link("/map", { group: g.GroupName });
              return (
                <tr key={g.GroupName} data-testid="group-row" data-name={g.GroupName} {...keys.row(i)}>
                  <td>{g.GroupName}</td>
                  <td className="mono" data-testid="group-filter">{g.FilterExpression}</td>
                  <td className="actions">
                    <a href={map} onClick={(e) => onLink(e, map)}>
                      map
                    </a>
                    <button onClick={() => setParams({ edit: g.GroupName ?? "" })} data-testid="edit-group">
                      Edit
                    </button>
                    <button
                      className="danger"
                      data-testid="delete-group"
                      onClick={async () => {
                        if (!confirm(`Delete group ${g.GroupName}?`)) return;
                        try {
                          await deleteGroup(g.GroupName ?? "");
                        } finally {
                          res.reload();
                        }
                      }}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}

function GroupForm({ group, onDone }: { group?: Group; onDone: () => void }) {
  const [name, setName] = useState(group?.GroupName ?? "");
  const [filter, setFilter] = useState(group?.FilterExpression ?? "");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      className="card form"
      data-testid="group-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          if (group) await updateGroup(name, filter);
          else await createGroup(name, filter);
          onDone();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h3>{group ? `Edit ${group.GroupName}` : "New group"}</h3>
      <label>
        Name
        <input data-testid="group-name" value={name} disabled={!!group} onChange={(e) => setName(e.target.value)} required />
      </label>
      <label>
        Filter expression
        <input data-testid="group-filter-input" className="mono" value={filter} onChange={(e) => setFilter(e.target.value)} />
      </label>
      {error ? <ErrorBox error={error} /> : null}
      <div className="actions">
        <button type="submit" disabled={busy} data-testid="group-save">
          Save
        </button>
        <button type="button" onClick={() => setParams({ edit: null })}>
          Cancel
        </button>
      </div>
    </form>
  );
}
