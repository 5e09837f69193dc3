//! The web UI (agent desktop, chat widget, demo page, supervisor view and
//! its reports): plain files from `gateway/web/`, embedded in the binary at
//! build time, so `cargo run` needs no build step and nothing is fetched at
//! run time.

use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

fn serve(path: &str) -> HttpResponse {
    match Assets::get(path) {
        Some(file) => {
            let mut response = HttpResponse::Ok();
            response
                .content_type(file.metadata.mimetype())
                .insert_header(("Cache-Control", "no-cache"));
            if file.metadata.mimetype().starts_with("text/html") {
                for header in crate::browser_policy::page_headers() {
                    response.insert_header(header);
                }
            }
            response.body(file.data.into_owned())
        }
        None => HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found"),
    }
}

pub async fn desktop() -> HttpResponse {
    serve("index.html")
}

pub async fn supervisor() -> HttpResponse {
    serve("supervisor.html")
}

pub async fn reports() -> HttpResponse {
    serve("reports.html")
}

pub async fn demo() -> HttpResponse {
    serve("demo.html")
}

pub async fn widget() -> HttpResponse {
    serve("widget.js")
}

pub async fn asset(path: web::Path<String>) -> HttpResponse {
    serve(&path.into_inner())
}
