// The console's only way to the server: the public X-Ray API on the same origin,
// POSTing JSON exactly as boto3 does. Types are the wire shapes (PascalCase).

export class ApiError extends Error {
  constructor(
    public readonly type: string,
    message: string,
    public readonly status: number,
  ) {
    super(message);
  }
}

// Under `roentgen serve --auth` the console signs in with an access key and then calls
// the API with an HttpOnly session cookie; every call carries this header, which a page
// on another origin cannot add (the server refuses cookie calls without it).
const CONSOLE_HEADER = { "x-roentgen-console": "1" };

// The errors that mean "sign in (again)": no session, an expired or signed-out one, or
// a key that no longer exists.
const SIGN_IN_ERRORS = new Set([
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
  "UnrecognizedClientException",
  "InvalidSignatureException",
]);
export const SIGN_IN_NEEDED = "roentgen:sign-in-needed";

export async function call<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>(path, "POST", body ?? {}, signal);
}

async function request<T>(path: string, method: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers: body === undefined ? CONSOLE_HEADER : { ...CONSOLE_HEADER, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError("NetworkError", `cannot reach the Roentgen server: ${(e as Error).message}`, 0);
  }
  const text = await resp.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError("SerializationException", `the server answered ${resp.status} with non-JSON text`, resp.status);
  }
  if (!resp.ok) {
    const type = String(resp.headers.get("x-amzn-errortype") ?? data.__type ?? "Error").split(":")[0];
    if (SIGN_IN_ERRORS.has(type) && path !== SESSION) window.dispatchEvent(new Event(SIGN_IN_NEEDED));
    throw new ApiError(type, String(data.message ?? data.Message ?? resp.statusText), resp.status);
  }
  return data as T;
}

const SESSION = "/console/session";
export interface SessionInfo {
  AuthRequired: boolean;
  SignedIn: boolean;
  AccessKeyId?: string;
  Tenant?: string;
  Role?: string;
  Expires?: number;
}
export const getSession = () => request<SessionInfo>(SESSION, "GET");
export const signIn = (accessKeyId: string, secretAccessKey: string) =>
  request<SessionInfo>(SESSION, "POST", { AccessKeyId: accessKeyId, SecretAccessKey: secretAccessKey });
export const signOut = () => request<SessionInfo>(SESSION, "DELETE");

export interface ErrorStatistics { ThrottleCount?: number; OtherCount?: number; TotalCount?: number }
export interface FaultStatistics { OtherCount?: number; TotalCount?: number }
export interface Statistics {
  OkCount?: number;
  ErrorStatistics?: ErrorStatistics;
  FaultStatistics?: FaultStatistics;
  TotalCount?: number;
  TotalResponseTime?: number;
}
export interface HistogramEntry { Value: number; Count: number }
export interface Edge {
  ReferenceId?: number;
  StartTime?: number;
  EndTime?: number;
  SummaryStatistics?: Statistics;
  ResponseTimeHistogram?: HistogramEntry[];
}
export interface Service {
  ReferenceId?: number;
  Name?: string;
  Names?: string[];
  Root?: boolean;
  Type?: string;
  StartTime?: number;
  EndTime?: number;
  Edges?: Edge[];
  SummaryStatistics?: Statistics;
  ResponseTimeHistogram?: HistogramEntry[];
}
export interface ServiceGraphResult { Services?: Service[]; StartTime?: number; EndTime?: number }

export interface AnnotationValue { NumberValue?: number; BooleanValue?: boolean; StringValue?: string }
export interface ServiceId { Name?: string; Names?: string[]; Type?: string }
export interface TraceSummary {
  Id?: string;
  StartTime?: number;
  Duration?: number;
  ResponseTime?: number;
  HasFault?: boolean;
  HasError?: boolean;
  HasThrottle?: boolean;
  IsPartial?: boolean;
  Http?: { HttpURL?: string; HttpStatus?: number; HttpMethod?: string; UserAgent?: string; ClientIp?: string };
  Annotations?: Record<string, { AnnotationValue?: AnnotationValue; ServiceIds?: ServiceId[] }[]>;
  Users?: { UserName?: string; ServiceIds?: ServiceId[] }[];
  ServiceIds?: ServiceId[];
  EntryPoint?: ServiceId;
}
export interface TraceSummariesResult {
  TraceSummaries?: TraceSummary[];
  NextToken?: string;
  TracesProcessedCount?: number;
  ApproximateTime?: number;
}
export interface Trace { Id?: string; Duration?: number; Segments?: { Id?: string; Document?: string }[] }
export interface Group { GroupName?: string; GroupARN?: string; FilterExpression?: string }
export interface SamplingRule {
  RuleName?: string;
  RuleARN?: string;
  ResourceARN: string;
  Priority: number;
  FixedRate: number;
  ReservoirSize: number;
  ServiceName: string;
  ServiceType: string;
  Host: string;
  HTTPMethod: string;
  URLPath: string;
  Version: number;
  Attributes?: Record<string, string>;
}
export interface SamplingRuleRecord { SamplingRule?: SamplingRule; CreatedAt?: number; ModifiedAt?: number }
export interface TimeSeriesPoint {
  Timestamp?: number;
  EdgeSummaryStatistics?: Statistics;
  ServiceSummaryStatistics?: Statistics;
  ResponseTimeHistogram?: HistogramEntry[];
}

export const serviceGraph = (start: number, end: number, group?: string, signal?: AbortSignal) =>
  call<ServiceGraphResult>("/ServiceGraph", { StartTime: start, EndTime: end, ...(group ? { GroupName: group } : {}) }, signal);

export const traceGraph = (ids: string[], signal?: AbortSignal) =>
  call<ServiceGraphResult>("/TraceGraph", { TraceIds: ids }, signal);

/// One page of summaries; `summaries` pages on until `max` or the end.
export const summariesPage = (start: number, end: number, filter: string, token?: string, signal?: AbortSignal) =>
  call<TraceSummariesResult>(
    "/TraceSummaries",
    { StartTime: start, EndTime: end, ...(filter.trim() ? { FilterExpression: filter } : {}), ...(token ? { NextToken: token } : {}) },
    signal,
  );

export async function summaries(
  start: number,
  end: number,
  filter: string,
  max: number,
  signal?: AbortSignal,
): Promise<{ items: TraceSummary[]; more: boolean }> {
  const items: TraceSummary[] = [];
  let token: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await summariesPage(start, end, filter, token, signal);
    items.push(...(page.TraceSummaries ?? []));
    token = page.NextToken ?? undefined;
    if (!token || items.length >= max) break;
  }
  return { items: items.slice(0, max), more: !!token || items.length > max };
}

export const batchGetTraces = (ids: string[], signal?: AbortSignal) =>
  call<{ Traces?: Trace[]; UnprocessedTraceIds?: string[] }>("/Traces", { TraceIds: ids }, signal);

export const timeSeries = (start: number, end: number, selector: string, period: number, group?: string, signal?: AbortSignal) =>
  call<{ TimeSeriesServiceStatistics?: TimeSeriesPoint[] }>(
    "/TimeSeriesServiceStatistics",
    { StartTime: start, EndTime: end, EntitySelectorExpression: selector, Period: period, ...(group ? { GroupName: group } : {}) },
    signal,
  );

export const getGroups = () => call<{ Groups?: Group[] }>("/Groups", {});
export const createGroup = (name: string, filter: string) =>
  call<{ Group?: Group }>("/CreateGroup", { GroupName: name, ...(filter.trim() ? { FilterExpression: filter } : {}) });
export const updateGroup = (name: string, filter: string) =>
  call<{ Group?: Group }>("/UpdateGroup", { GroupName: name, FilterExpression: filter });
export const deleteGroup = (name: string) => call<object>("/DeleteGroup", { GroupName: name });

export const getSamplingRules = () => call<{ SamplingRuleRecords?: SamplingRuleRecord[] }>("/GetSamplingRules", {});
export const createSamplingRule = (rule: SamplingRule) => call<object>("/CreateSamplingRule", { SamplingRule: rule });
export const updateSamplingRule = (rule: Partial<SamplingRule>) => call<object>("/UpdateSamplingRule", { SamplingRuleUpdate: rule });
export const deleteSamplingRule = (name: string) => call<object>("/DeleteSamplingRule", { RuleName: name });

// ------------------------------------------------------------------ derived numbers

export function counts(s?: Statistics) {
  const ok = s?.OkCount ?? 0;
  const throttle = s?.ErrorStatistics?.ThrottleCount ?? 0;
  const error = (s?.ErrorStatistics?.TotalCount ?? 0) - throttle;
  const fault = s?.FaultStatistics?.TotalCount ?? 0;
  const total = s?.TotalCount ?? ok + error + throttle + fault;
  const mean = total > 0 ? (s?.TotalResponseTime ?? 0) / total : 0;
  return { ok, error, fault, throttle, total, mean };
}

export function annotationText(v?: AnnotationValue): string {
  if (!v) return "";
  if (v.StringValue !== undefined) return v.StringValue;
  if (v.NumberValue !== undefined) return String(v.NumberValue);
  if (v.BooleanValue !== undefined) return String(v.BooleanValue);
  return "";
}
