//! The call history for administrators: `GET /api/admin/history` (JSON,
//! paged) and `GET /api/admin/history.csv` (the same filters, as CSV), both
//! behind the API's guard (the bearer token or an administrator's session).
//! Query parameters are checked here; a bad one is a 400 naming it.
use super::super::api::{token_guard, ApiError};
use super::csv;
use crate::config::validate::valid_extension;
use crate::sip::core::SipCoreRef;
use crate::storage::{CallFilter, CallRecord, PageKey, DISPOSITIONS};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// Most calls one history page holds.
pub const MAX_PAGE: i64 = 100;
/// Most calls one CSV export holds (the newest ones); more is said in the
/// `X-Rows-Capped` header.
pub const MAX_CSV_ROWS: i64 = 10_000;
/// What the page asks for when the query says nothing.
const DEFAULT_PAGE: i64 = 25;

pub fn routes(core: SipCoreRef) -> Router<SipCoreRef> {
    Router::new()
        .route("/api/admin/history", get(history))
        .route("/api/admin/history.csv", get(history_csv))
        .route_layer(middleware::from_fn_with_state(core, token_guard))
}

/// The query as sent: every value a string, so a bad one is refused by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Where the page continues: the previous page's `next_before` (`MS.SEQ`),
    /// or a time in unix ms (calls started before it).
    pub before: Option<String>,
    pub limit: Option<String>,
    /// An extension or number: the caller or the callee.
    pub number: Option<String>,
    /// How the calls ended: one of [`DISPOSITIONS`].
    pub ended: Option<String>,
}

/// A checked query.
#[derive(Debug, PartialEq)]
pub struct HistoryParams {
    pub before: Option<PageKey>,
    pub limit: i64,
    pub filter: CallFilter,
}

/// Checks `q`; `limit` defaults to `default` and may be 1 to `max`. Empty
/// values count as absent (a form's blank field). The error names the parameter.
pub fn check(q: &HistoryQuery, default: i64, max: i64) -> Result<HistoryParams, String> {
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let before = match given(&q.before) {
        None => None,
        Some(b) => Some(PageKey::parse(&b).ok_or("before: the previous page's next_before, or a time in unix milliseconds")?),
    };
    let limit = match given(&q.limit) {
        None => default,
        Some(l) => l.parse::<i64>().ok().filter(|l| (1..=max).contains(l)).ok_or(format!("limit: a number from 1 to {max}"))?,
    };
    let number = given(&q.number);
    if let Some(n) = &number
        && !valid_extension(n)
    {
        return Err("number: an extension or number, 1-32 characters of digits, letters or .-_+*#".into());
    }
    let disposition = given(&q.ended);
    if let Some(d) = &disposition
        && !DISPOSITIONS.contains(&d.as_str())
    {
        return Err(format!("ended: one of {}", DISPOSITIONS.join(", ")));
    }
    Ok(HistoryParams { before, limit, filter: CallFilter { number, disposition } })
}

type Q = Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>;

fn checked(q: Q, default: i64, max: i64) -> Result<HistoryParams, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let Query(q) = q.map_err(|e| bad(format!("query: {}; the parameters are before, limit, number and ended, each at most once", e.body_text())))?;
    check(&q, default, max).map_err(bad)
}

async fn page(core: &SipCoreRef, p: &HistoryParams, limit: i64) -> Result<Vec<CallRecord>, ApiError> {
    core.store.calls_page(&p.filter, p.before, limit).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "reading call history failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the call history could not be read")
    })
}

/// Call history, newest first, paged by start time; `number` and `ended` filter it.
async fn history(State(core): State<SipCoreRef>, q: Q) -> Result<Json<Value>, ApiError> {
    let p = checked(q, DEFAULT_PAGE, MAX_PAGE)?;
    let rows = page(&core, &p, p.limit).await?;
    let next_before = (rows.len() as i64 == p.limit).then(|| rows.last().map(|c| PageKey::after(c).to_string())).flatten();
    let calls: Vec<Value> = rows
        .iter()
        .map(|c| {
            let duration_ms = match (c.answered_at, c.ended_at) {
                (Some(a), Some(e)) => Some(e - a),
                _ => None,
            };
            json!({"call_id": c.call_id, "caller": c.caller, "callee": c.callee, "started_at": c.started_at, "answered_at": c.answered_at, "ended_at": c.ended_at, "duration_ms": duration_ms, "disposition": c.disposition, "end_reason": c.end_reason})
        })
        .collect();
    Ok(Json(json!({"calls": calls, "next_before": next_before})))
}

/// The same calls as CSV, newest first, at most `limit` (default and most:
/// [`MAX_CSV_ROWS`]); when more matched, `X-Rows-Capped: LIMIT` says so.
async fn history_csv(State(core): State<SipCoreRef>, q: Q) -> Result<Response, ApiError> {
    let p = checked(q, MAX_CSV_ROWS, MAX_CSV_ROWS)?;
    let mut rows = page(&core, &p, p.limit + 1).await?;
    let capped = rows.len() as i64 > p.limit;
    rows.truncate(p.limit as usize);
    let mut headers = vec![
        (header::CONTENT_TYPE, "text/csv; charset=utf-8; header=present".to_string()),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"ha-pbx-calls.csv\"".to_string()),
        (header::CACHE_CONTROL, "no-store".to_string()),
    ];
    if capped {
        headers.push((header::HeaderName::from_static("x-rows-capped"), p.limit.to_string()));
    }
    let mut response = (StatusCode::OK, csv::calls(&rows)).into_response();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            response.headers_mut().insert(k, v);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(before: Option<&str>, limit: Option<&str>, number: Option<&str>, ended: Option<&str>) -> HistoryQuery {
        HistoryQuery { before: before.map(Into::into), limit: limit.map(Into::into), number: number.map(Into::into), ended: ended.map(Into::into) }
    }

    #[test]
    fn nothing_given_is_the_first_page_unfiltered() {
        assert_eq!(check(&HistoryQuery::default(), 25, 100), Ok(HistoryParams { before: None, limit: 25, filter: CallFilter::default() }));
        // a form's blank fields are absent
        assert_eq!(check(&q(Some(""), Some(" "), Some(""), Some("")), 25, 100).unwrap().filter, CallFilter::default());
    }

    #[test]
    fn good_values_pass() {
        let p = check(&q(Some("1764860000000"), Some("100"), Some(" 110 "), Some("missed")), 25, 100).unwrap();
        assert_eq!(p.before, Some(PageKey { started_at: 1_764_860_000_000, seq: i64::MIN }));
        // the previous page's next_before: a start and a row
        let k = check(&q(Some("1764860000000.42"), None, None, None), 25, 100).unwrap().before;
        assert_eq!(k, Some(PageKey { started_at: 1_764_860_000_000, seq: 42 }));
        assert_eq!(k.unwrap().to_string(), "1764860000000.42");
        assert_eq!(p.limit, 100);
        assert_eq!(p.filter, CallFilter { number: Some("110".into()), disposition: Some("missed".into()) });
        assert_eq!(check(&q(None, None, Some("+4930123"), Some("answered")), 25, 100).unwrap().filter.number.as_deref(), Some("+4930123"));
        for d in DISPOSITIONS {
            assert!(check(&q(None, None, None, Some(d)), 25, 100).is_ok(), "{d}");
        }
    }

    #[test]
    fn each_bad_value_is_refused_by_name() {
        let err = |q: HistoryQuery| check(&q, 25, 100).unwrap_err();
        for b in ["x", "-5", "0", "1.", ".5", "1.0", "1.-5", "1.5.5", "1.x", "99999999999999999999", "5.99999999999999999999"] {
            assert!(err(q(Some(b), None, None, None)).starts_with("before:"), "{b}");
        }
        for l in ["0", "101", "-1", "ten", "1e3"] {
            assert_eq!(err(q(None, Some(l), None, None)), "limit: a number from 1 to 100", "{l}");
        }
        for n in ["1 1", "=cmd|' /C calc'!A0", "10%", "' OR 1=1 --", "a\r\nb", &"1".repeat(33), "ü"] {
            assert!(err(q(None, None, Some(n), None)).starts_with("number:"), "{n:?}");
        }
        for e in ["ANSWERED", "open", "answered,missed", "%"] {
            assert_eq!(err(q(None, None, None, Some(e))), "ended: one of answered, missed, busy, rejected, cancelled, failed", "{e}");
        }
        // the message never echoes the value (no client text in the reply or a log)
        assert!(!err(q(None, None, Some("<script>"), None)).contains("<script>"));
    }

    #[test]
    fn the_export_has_its_own_cap() {
        assert_eq!(check(&HistoryQuery::default(), MAX_CSV_ROWS, MAX_CSV_ROWS).unwrap().limit, MAX_CSV_ROWS);
        assert!(check(&q(None, Some("10001"), None, None), MAX_CSV_ROWS, MAX_CSV_ROWS).is_err());
    }
}
