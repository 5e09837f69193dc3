//! REST over the system of record: search (`GET /api/v1/conversations`),
//! export as CSV or NDJSON (streamed: a page of rows at a time, never the
//! whole set in memory), and one conversation's transcript as text or JSON.
//! Who may see what is the engine's rule; this turns HTTP into its calls
//! and its rows into bytes.

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use switchboard_engine::records::ConversationQuery;
use switchboard_proto::model::{
    ConversationExportRow, ConversationPage, ConversationState, Message, Transcript,
};
use switchboard_proto::{AgentId, ConversationId, CustomerId, ErrorBody, ErrorCode, Timestamp};
use utoipa::IntoParams;

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::identity::{RecordExporter, RecordReader};

type Data = web::Data<AppState>;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationParams {
    /// Words of the transcript (customer and agent text), all required, any case.
    q: Option<String>,
    /// Queue id.
    queue: Option<String>,
    /// Agent id: conversations it had a leg in.
    agent: Option<String>,
    /// Customer id (`cu-...`).
    customer: Option<String>,
    /// `queued`, `offered`, `active`, `conference_requested`, `conference`,
    /// `ended`, `closed` or `abandoned`.
    #[param(value_type = Option<String>,
        pattern = "^(queued|offered|active|conference_requested|conference|ended|closed|abandoned)$")]
    state: Option<String>,
    /// Wrap-up reason id.
    wrap_up: Option<String>,
    /// `created_at` at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// `created_at` before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// 1-200, default 50 (search only).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `next_cursor` of the previous page (search only).
    cursor: Option<String>,
    /// `csv` (default) or `ndjson` (export only).
    #[param(value_type = Option<String>, pattern = "^(csv|ndjson)$")]
    format: Option<String>,
}

#[derive(Clone, Copy)]
enum ExportFormat {
    Csv,
    Ndjson,
}

#[derive(Clone, Copy)]
enum TranscriptFormat {
    Txt,
    Json,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptParams {
    /// `json` (default) or `txt`.
    #[param(value_type = Option<String>, pattern = "^(json|txt)$")]
    format: Option<String>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

/// `limit` as a number; the engine checks its range.
pub(crate) fn limit(text: Option<&str>) -> Result<Option<usize>, ApiError> {
    crate::query::whole_number("limit", text)
}

fn export_format(format: Option<&str>) -> Result<ExportFormat, ApiError> {
    match format {
        None | Some("csv") => Ok(ExportFormat::Csv),
        Some("ndjson") => Ok(ExportFormat::Ndjson),
        Some(other) => Err(bad_request(format!(
            "format: {other:?} is not csv or ndjson"
        ))),
    }
}

fn transcript_format(format: Option<&str>) -> Result<TranscriptFormat, ApiError> {
    match format {
        None | Some("json") => Ok(TranscriptFormat::Json),
        Some("txt") => Ok(TranscriptFormat::Txt),
        Some(other) => Err(bad_request(format!("format: {other:?} is not txt or json"))),
    }
}

fn time(key: &str, value: Option<String>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|text| {
            Timestamp::parse_rfc3339(&text).map_err(|_| {
                bad_request(format!(
                    "{key}: not an RFC 3339 time (2026-12-07T09:30:00Z)"
                ))
            })
        })
        .transpose()
}

impl ConversationParams {
    fn query(&mut self) -> Result<ConversationQuery, ApiError> {
        let state = match self.state.take() {
            None => None,
            Some(name) => Some(ConversationState::parse(&name).ok_or_else(|| {
                let names: Vec<&str> = ConversationState::ALL.iter().map(|s| s.as_str()).collect();
                bad_request(format!(
                    "state: {name:?} is not one of {}",
                    names.join(", ")
                ))
            })?),
        };
        Ok(ConversationQuery {
            q: self.q.take(),
            queue: self.queue.take(),
            agent: self.agent.take().map(AgentId::new),
            customer: self.customer.take().map(CustomerId::new),
            state,
            wrap_up: self.wrap_up.take(),
            from: time("from", self.from.take())?,
            to: time("to", self.to.take())?,
        })
    }
}

/// Search: supervisors see every conversation, agents those they had a leg in.
#[utoipa::path(get, path = "/api/v1/conversations", params(ConversationParams),
    security(("token" = [])),
    responses((status = 200, body = ConversationPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn search(
    state: Data,
    RecordReader(viewer): RecordReader,
    params: web::Query<ConversationParams>,
) -> Result<HttpResponse, ApiError> {
    let mut params = params.into_inner();
    // `format` is the export's; a bad one is refused here too, as the
    // document (one list of parameters for both) says.
    export_format(params.format.as_deref())?;
    let query = params.query()?;
    let limit = limit(params.limit.as_deref())?;
    let page = state
        .engine
        .search_conversations(query, limit, params.cursor.as_deref(), &viewer)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The columns of a CSV export, in the order of [`ConversationExportRow`].
const CSV_HEADER: [&str; 14] = [
    "conversation_id",
    "state",
    "queue_id",
    "customer_id",
    "customer_name",
    "agents",
    "created_at",
    "first_accepted_at",
    "ended_at",
    "closed_at",
    "wait_s",
    "handle_s",
    "wrap_ups",
    "message_count",
];

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a
/// tab or carriage return first) starts with `'`: a customer types their
/// own name, and a supervisor opens the export in a spreadsheet.
fn defused(cell: String) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell,
    }
}

pub(crate) fn csv_line(fields: impl IntoIterator<Item = String>) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(256));
    writer.write_record(fields)?;
    writer
        .into_inner()
        .map_err(|error| csv::Error::from(error.into_error()))
}

fn csv_row(row: &ConversationExportRow) -> Result<Vec<u8>, csv::Error> {
    let time = |at: Option<Timestamp>| at.map(Timestamp::to_rfc3339).unwrap_or_default();
    let seconds = |value: Option<f64>| value.map(|s| format!("{s:.3}")).unwrap_or_default();
    csv_line([
        row.conversation_id.as_str().to_owned(),
        row.state.as_str().to_owned(),
        row.queue_id.clone(),
        row.customer_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default(),
        defused(row.customer_name.clone()),
        row.agents.clone(),
        row.created_at.to_rfc3339(),
        time(row.first_accepted_at),
        time(row.ended_at),
        time(row.closed_at),
        seconds(row.wait_s),
        seconds(row.handle_s),
        row.wrap_ups.clone(),
        row.message_count.to_string(),
    ])
}

fn encode(format: ExportFormat, row: &ConversationExportRow) -> Result<Vec<u8>, String> {
    match format {
        ExportFormat::Csv => csv_row(row).map_err(|error| error.to_string()),
        ExportFormat::Ndjson => serde_json::to_vec(row)
            .map(|mut line| {
                line.push(b'\n');
                line
            })
            .map_err(|error| error.to_string()),
    }
}

/// Rows sent in one chunk at most: enough to keep writes few, small enough
/// that memory stays flat.
const ROWS_PER_CHUNK: usize = 100;

/// Export (supervisors): one row per conversation, newest first, streamed.
#[utoipa::path(get, path = "/api/v1/conversations/export", params(ConversationParams),
    security(("token" = [])),
    responses((status = 200, description = "CSV with a header row, or NDJSON",
        content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn export(
    state: Data,
    RecordExporter(viewer): RecordExporter,
    params: web::Query<ConversationParams>,
) -> Result<HttpResponse, ApiError> {
    let mut params = params.into_inner();
    let format = export_format(params.format.as_deref())?;
    // `limit` pages a search (an export is every row); a bad one is still
    // refused, as the document (one list of parameters for both) says.
    if let Some(limit) = limit(params.limit.as_deref())? {
        if !(1..=switchboard_engine::records::MAX_PAGE).contains(&limit) {
            return Err(bad_request(format!(
                "limit: from 1 to {}",
                switchboard_engine::records::MAX_PAGE
            )));
        }
    }
    let query = params.query()?;
    let rows = state.engine.export_conversations(query, &viewer)?;
    let header = match format {
        ExportFormat::Csv => csv_line(CSV_HEADER.iter().map(|name| (*name).to_owned()))
            .map_err(|error| ApiError::new(ErrorCode::Internal, error.to_string()))?,
        ExportFormat::Ndjson => Vec::new(),
    };
    let chunks =
        futures_util::stream::unfold((rows, Some(header)), move |(mut rows, header)| async move {
            let mut chunk = header.unwrap_or_default();
            let first = rows.recv().await;
            let Some(first) = first else {
                // The end: the header alone if there was no row.
                return (!chunk.is_empty()).then(|| (Ok(Bytes::from(chunk)), (rows, None)));
            };
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(row) = next.take() {
                match row
                    .map_err(|error| error.to_string())
                    .and_then(|row| encode(format, &row))
                {
                    Ok(line) => chunk.extend_from_slice(&line),
                    Err(error) => {
                        tracing::warn!(%error, "export stopped");
                        return Some((
                            Err(actix_web::error::ErrorInternalServerError(error)),
                            (rows, None),
                        ));
                    }
                }
                taken += 1;
                if taken < ROWS_PER_CHUNK {
                    next = rows.try_recv().ok();
                }
            }
            Some((Ok::<_, actix_web::Error>(Bytes::from(chunk)), (rows, None)))
        });
    let (content_type, file) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "conversations.csv"),
        ExportFormat::Ndjson => ("application/x-ndjson", "conversations.ndjson"),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{file}\""),
        ))
        .streaming(chunks))
}

/// One message a line: `[time] name: text`.
fn transcript_text(messages: &[Message]) -> String {
    let mut text = String::new();
    for message in messages {
        text.push('[');
        text.push_str(&message.ts.to_rfc3339());
        text.push_str("] ");
        // A name is one line: its control characters would forge lines.
        text.extend(message.from.name.chars().filter(|c| !c.is_control()));
        text.push_str(": ");
        text.push_str(&message.text.replace('\n', "\n    "));
        text.push('\n');
    }
    text
}

/// The thread as a person reads it: for an agent who took part, or a supervisor.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/transcript", params(TranscriptParams,
        ("id" = String, Path, description = "conversation id")),
    security(("token" = [])),
    responses((status = 200, body = Transcript), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn transcript(
    state: Data,
    RecordReader(viewer): RecordReader,
    id: web::Path<String>,
    params: web::Query<TranscriptParams>,
) -> Result<HttpResponse, ApiError> {
    let id = ConversationId::new(id.into_inner());
    let format = transcript_format(params.format.as_deref())?;
    let messages = state.engine.transcript(&id, &viewer).await?;
    Ok(match format {
        TranscriptFormat::Txt => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(transcript_text(&messages)),
        TranscriptFormat::Json => HttpResponse::Ok().json(Transcript {
            conversation_id: id,
            messages,
        }),
    })
}
