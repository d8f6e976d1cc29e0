//! The page shell every page shares: skip link, header with the service name and the signed-in
//! user, navigation, the development banner, main content and footer.

use crate::html::Text;
use crate::session::Session;
use crate::w;

/// The navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    SignIn,
    Search,
    Practices,
    Audit,
}

/// A whole HTML page around `body`.
pub fn page(title: &str, session: Option<&Session>, nav: Nav, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    w!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} – Keel</title><link rel=\"stylesheet\" href=\"/ui/assets/keel.css\"></head><body>\
         <a class=\"nhsuk-skip-link\" href=\"#maincontent\">Skip to main content</a>\
         <header class=\"nhsuk-header\" role=\"banner\"><div class=\"nhsuk-width-container\">",
        Text(title)
    );
    if let Some(s) = session {
        w!(
            out,
            "<div class=\"nhsuk-header__account\"><span data-testid=\"signed-in-as\">{} · {} ({})<br>{} ({})</span> · \
             <form method=\"post\" action=\"/ui/sign-out\"><button class=\"nhsuk-button--link\" type=\"submit\">Sign out</button></form></div>",
            Text(s.user.name),
            Text(s.user.job),
            Text(s.user.role_code),
            Text(&s.organisation_name),
            Text(s.organisation.as_str())
        );
    }
    out.push_str(
        "<a class=\"nhsuk-header__service-name\" href=\"/ui/\">Keel · PCN shared record</a></div></header>",
    );
    if let Some(s) = session {
        out.push_str(
            "<nav class=\"nhsuk-header__navigation\" aria-label=\"Primary navigation\"><ul>",
        );
        let mut item = |href: &str, label: &str, this: Nav| {
            let current = if this == nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            w!(out, "<li><a href=\"{href}\"{current}>{label}</a></li>");
        };
        item("/ui/search", "Find a patient", Nav::Search);
        item("/ui/practices", "Practices", Nav::Practices);
        if s.user.reads_audit() {
            item("/ui/audit", "Audit trail", Nav::Audit);
        }
        out.push_str("</ul></nav>");
    }
    out.push_str(
        "<div class=\"keel-dev-banner\" role=\"region\" aria-label=\"Demonstration notice\"><div class=\"nhsuk-width-container\">\
         <strong>Demonstration only.</strong> Synthetic patients (NHS numbers from the 999 test range) \
         and a development sign-in without a smartcard. Do not enter real patient data.</div></div>\
         <div class=\"nhsuk-width-container\"><main class=\"nhsuk-main-wrapper\" id=\"maincontent\" role=\"main\">",
    );
    out.push_str(body);
    out.push_str(
        "</main></div><footer class=\"nhsuk-footer\" role=\"contentinfo\"><div class=\"nhsuk-width-container\">\
         Keel – an open FHIR R4 backbone for primary care. Every page that shows patient data is \
         decided by the access policy and recorded in the audit trail.</div></footer></body></html>",
    );
    out
}

/// An error summary (the NHS pattern) naming each problem, linked to its field.
pub fn error_summary(out: &mut String, errors: &[(&str, &str)]) {
    if errors.is_empty() {
        return;
    }
    out.push_str(
        "<div class=\"nhsuk-error-summary\" aria-labelledby=\"error-summary-title\" role=\"alert\" tabindex=\"-1\">\
         <h2 class=\"nhsuk-error-summary__title\" id=\"error-summary-title\">There is a problem</h2><ul>",
    );
    for (field, message) in errors {
        w!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            Text(field),
            Text(message)
        );
    }
    out.push_str("</ul></div>");
}
