//! What the CRS said about a request, read from libmodsecurity's log messages
//! (`... [id "942100"] [msg "..."] [data "Matched Data: ... found within ARGS:id: ..."]
//! [severity "2"] ...`): the rules that matched, the anomaly score, the argument.

/// One rule that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    pub id: u32,
    pub message: String,
    /// Where it matched: `ARGS:id`, `REQUEST_HEADERS:User-Agent`, `REQUEST_FILENAME`…
    pub target: Option<String>,
    /// The CRS severity's anomaly points (CRITICAL 5, ERROR 4, WARNING 3, NOTICE 2; 0: none).
    pub points: u32,
}

/// Whether a rule only evaluates or reports the score (REQUEST-949, RESPONSE-959 and
/// RESPONSE-980: not an attack of their own).
pub fn is_evaluation(id: u32) -> bool {
    matches!(id / 1000, 949 | 959 | 980)
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("[{name} \"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find("\"]")?;
    Some(&line[start..start + end])
}

fn points(severity: Option<&str>) -> u32 {
    match severity {
        Some("0" | "1" | "2") => 5,
        Some("3") => 4,
        Some("4") => 3,
        Some("5") => 2,
        _ => 0,
    }
}

/// Reads one log message; `None` when it names no rule.
pub fn parse(line: &str) -> Option<Matched> {
    let id = field(line, "id")?.parse().ok()?;
    let data = field(line, "data").unwrap_or("");
    let target = data
        .find(" found within ")
        .map(|i| &data[i + " found within ".len()..])
        .map(|rest| {
            // `ARGS:id: 1 OR 1=1` → `ARGS:id`
            match rest.find(": ") {
                Some(j) => rest[..j].to_string(),
                None => rest.trim_end_matches(':').to_string(),
            }
        });
    Some(Matched {
        id,
        message: field(line, "msg").unwrap_or("").to_string(),
        target,
        points: points(field(line, "severity")),
    })
}

/// What a transaction's log messages say: the rules that matched (each rule and target
/// once) and the score the evaluation rule reported (else the sum of the matches' points).
pub fn inspection(block: Option<u16>, messages: &[String]) -> crate::Inspection {
    let mut score = None;
    let mut matched: Vec<Matched> = Vec::new();
    for line in messages {
        if let Some(total) = total_score(line) {
            score = Some(total);
        }
        if let Some(m) = parse(line)
            && !is_evaluation(m.id)
            && !matched.iter().any(|x| x.id == m.id && x.target == m.target)
        {
            matched.push(m);
        }
    }
    let score = score.unwrap_or_else(|| matched.iter().map(|m| m.points).sum());
    crate::Inspection {
        block,
        score,
        matched,
    }
}

/// The score 949110 or 959100 reports (`Total Score: 10`), if it ran.
pub fn total_score(line: &str) -> Option<u32> {
    let i = line.find("Total Score: ")? + "Total Score: ".len();
    let digits: String = line[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crs_message_gives_its_rule_argument_and_points() {
        let line = r#"ModSecurity: Warning. detected SQLi using libinjection. [file "/usr/share/modsecurity-crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf"] [line "65"] [id "942100"] [rev ""] [msg "SQL Injection Attack Detected via libinjection"] [data "Matched Data: 1&1 found within ARGS:var: 1234 OR 1=1"] [severity "2"] [ver "OWASP_CRS/3.3.4"] [maturity "0"] [accuracy "0"] [tag "attack-sqli"] [hostname "127.0.0.1"] [uri "/"] [unique_id "1"] [ref "v8,10"]"#;
        let m = parse(line).expect("a rule");
        assert_eq!(m.id, 942100);
        assert_eq!(m.target.as_deref(), Some("ARGS:var"));
        assert_eq!(m.points, 5);
        assert_eq!(m.message, "SQL Injection Attack Detected via libinjection");
        assert_eq!(
            total_score(r#"[msg "Inbound Anomaly Score Exceeded (Total Score: 10)"]"#),
            Some(10)
        );
        assert_eq!(parse("ModSecurity: no id here"), None);
    }
}
