//! REST for reports (`GET /api/v1/reports/queues|agents`): the query string
//! into the engine's [`ReportRequest`], the rows out as JSON or CSV. The
//! rules (ranges, intervals, what each column counts) are the engine's.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use std::collections::BTreeSet;
use switchboard_engine::reports::query::ReportRequest;
use switchboard_proto::report::{AgentReport, AgentReportRow, QueueReport, QueueReportRow};
use switchboard_proto::ErrorBody;
use utoipa::IntoParams;

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::identity::ReportReader;
use crate::records::csv_line;

type Data = web::Data<AppState>;

/// What both reports take.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// The first interval's start: RFC 3339, or a date (its midnight in
    /// `tz`). Default: today.
    from: Option<String>,
    /// The end (excluded): RFC 3339 or a date. Default: the end of the day
    /// of `from`.
    to: Option<String>,
    /// `15m` (default, also when empty), `1h` or `1d`.
    #[param(pattern = "^(15m|1h|1d)?$")]
    interval: Option<String>,
    /// IANA time zone of the intervals (default UTC).
    tz: Option<String>,
    /// `json` (default, also when empty) or `csv`.
    #[param(pattern = "^(json|csv)?$")]
    format: Option<String>,
}

/// `?queue=`: comma-separated queue ids; every queue without it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    queue: Option<String>,
}

/// `?agent=`: comma-separated agent ids; every agent without it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentParams {
    agent: Option<String>,
}

#[derive(PartialEq)]
enum Format {
    Json,
    Csv,
}

fn format(params: &ReportParams) -> Result<Format, ApiError> {
    match params.format.as_deref().map(str::trim) {
        None | Some("" | "json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(ApiError::from(
            switchboard_engine::EngineError::InvalidParameter(format!(
                "format: {other:?} is not json or csv"
            )),
        )),
    }
}

fn request(params: ReportParams, only: Option<String>) -> ReportRequest {
    ReportRequest {
        from: params.from,
        to: params.to,
        interval: params.interval,
        tz: params.tz,
        only,
    }
}

/// Queues by interval (supervisor, or an API key with `reports:read`).
#[utoipa::path(get, path = "/api/v1/reports/queues", params(ReportParams, QueueParams),
    security(("token" = [])),
    responses((status = 200, body = QueueReport, description = "JSON, or CSV with format=csv"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn queues(
    state: Data,
    _who: ReportReader,
    params: web::Query<ReportParams>,
    queue: web::Query<QueueParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let format = format(&params)?;
    let report = state
        .engine
        .queue_report(request(params, queue.into_inner().queue))
        .await?;
    match format {
        Format::Json => Ok(HttpResponse::Ok().json(report)),
        Format::Csv => csv_answer("queues", queue_csv(&report.rows)),
    }
}

/// Agents by interval (supervisor, or an API key with `reports:read`).
#[utoipa::path(get, path = "/api/v1/reports/agents", params(ReportParams, AgentParams),
    security(("token" = [])),
    responses((status = 200, body = AgentReport, description = "JSON, or CSV with format=csv"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn agents(
    state: Data,
    _who: ReportReader,
    params: web::Query<ReportParams>,
    agent: web::Query<AgentParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let format = format(&params)?;
    let report = state
        .engine
        .agent_report(request(params, agent.into_inner().agent))
        .await?;
    match format {
        Format::Json => Ok(HttpResponse::Ok().json(report)),
        Format::Csv => csv_answer("agents", agent_csv(&report.rows)),
    }
}

fn csv_answer(what: &str, body: Result<Vec<u8>, csv::Error>) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(|error| {
        ApiError::new(switchboard_proto::ErrorCode::Internal, error.to_string())
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{what}-report.csv\""),
        ))
        .body(body))
}

fn number(value: Option<f64>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// Every key of the rows' maps, each a column of its own (`prefix:key`).
fn map_keys<'a, V: 'a>(
    maps: impl Iterator<Item = &'a std::collections::BTreeMap<String, V>>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = maps.flat_map(|map| map.keys()).collect();
    keys.into_iter().cloned().collect()
}

/// Header, then a line per row; `wrap_ups` as a column per reason.
fn queue_csv(rows: &[QueueReportRow]) -> Result<Vec<u8>, csv::Error> {
    let reasons = map_keys(rows.iter().map(|row| &row.wrap_ups));
    let mut header: Vec<String> = [
        "queue",
        "interval_start",
        "entered",
        "handled",
        "abandoned",
        "short_abandoned",
        "rona",
        "transferred_out",
        "overflowed_out",
        "asa_s",
        "max_wait_s",
        "aht_s",
        "service_level_pct",
    ]
    .map(String::from)
    .to_vec();
    header.extend(reasons.iter().map(|reason| format!("wrap_up:{reason}")));
    let mut body = csv_line(header)?;
    for row in rows {
        let mut line = vec![
            row.queue.as_str().to_owned(),
            row.interval_start.clone(),
            row.entered.to_string(),
            row.handled.to_string(),
            row.abandoned.to_string(),
            row.short_abandoned.to_string(),
            row.rona.to_string(),
            row.transferred_out.to_string(),
            row.overflowed_out.to_string(),
            number(row.asa_s),
            number(row.max_wait_s),
            number(row.aht_s),
            number(row.service_level_pct),
        ];
        line.extend(
            reasons
                .iter()
                .map(|reason| row.wrap_ups.get(reason).copied().unwrap_or(0).to_string()),
        );
        body.extend(csv_line(line)?);
    }
    Ok(body)
}

/// Header, then a line per row; `idle_by_reason` as a column per reason.
fn agent_csv(rows: &[AgentReportRow]) -> Result<Vec<u8>, csv::Error> {
    let reasons = map_keys(rows.iter().map(|row| &row.idle_by_reason));
    let mut header: Vec<String> = [
        "agent",
        "interval_start",
        "offered",
        "accepted",
        "rona",
        "handled",
        "transferred_out",
        "conferences_joined",
        "aht_s",
        "logged_in_s",
        "available_s",
        "idle_s",
        "rona_s",
        "occupancy_pct",
    ]
    .map(String::from)
    .to_vec();
    header.extend(reasons.iter().map(|reason| format!("idle:{reason}")));
    let mut body = csv_line(header)?;
    for row in rows {
        let mut line = vec![
            row.agent.as_str().to_owned(),
            row.interval_start.clone(),
            row.offered.to_string(),
            row.accepted.to_string(),
            row.rona.to_string(),
            row.handled.to_string(),
            row.transferred_out.to_string(),
            row.conferences_joined.to_string(),
            number(row.aht_s),
            row.logged_in_s.to_string(),
            row.available_s.to_string(),
            row.idle_s.to_string(),
            row.rona_s.to_string(),
            number(row.occupancy_pct),
        ];
        line.extend(reasons.iter().map(|reason| {
            row.idle_by_reason
                .get(reason)
                .map(|seconds| seconds.to_string())
                .unwrap_or_else(|| "0".into())
        }));
        body.extend(csv_line(line)?);
    }
    Ok(body)
}
