//! The headers that ask a phone to answer by itself (intercom): what
//! Yealink, Snom, Grandstream, Cisco/Linksys and Polycom-style phones read.
use rsipstack::sip::Header;

/// `Call-Info: <sip:HOST>;answer-after=0` (Snom, Grandstream, Yealink,
/// Cisco/Linksys SPA, and baresip with `sip_autoanswer`) and
/// `Alert-Info: <http://www.notused.com>;info=alert-autoanswer;delay=0`
/// (Yealink, Grandstream; `info=intercom` for Polycom-style dial plans).
pub fn headers(host: &str) -> Vec<Header> {
    vec![
        Header::Other("Call-Info".into(), format!("<sip:{host}>;answer-after=0")),
        Header::Other("Alert-Info".into(), "<http://www.notused.com>;info=alert-autoanswer;delay=0".into()),
        Header::Other("Alert-Info".into(), "<http://www.notused.com>;info=intercom".into()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn call_info_and_alert_info_variants() {
        let text: Vec<String> = super::headers("pbx.local").iter().map(|h| h.to_string()).collect();
        assert_eq!(text[0], "Call-Info: <sip:pbx.local>;answer-after=0");
        assert!(text[1].ends_with("info=alert-autoanswer;delay=0"), "{text:?}");
        assert!(text[2].ends_with("info=intercom"), "{text:?}");
    }
}
