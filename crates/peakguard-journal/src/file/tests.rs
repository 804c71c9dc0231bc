use super::*;

fn event(n: usize) -> Event {
    Event {
        who: "ops".into(),
        what: "POST /purge".into(),
        site: Some("shop".into()),
        detail: format!("url=https://shop.test/p/{n}"),
        result: "200".into(),
    }
}

fn journal_of(n: usize) -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().expect("dir");
    let journal = Journal::new(dir.path().join("state/journal.jsonl"));
    for i in 0..n {
        journal.append(event(i)).expect("append");
    }
    (dir, journal)
}

fn lines(j: &Journal) -> Vec<String> {
    std::fs::read_to_string(j.path())
        .expect("read")
        .lines()
        .map(str::to_string)
        .collect()
}

fn write(j: &Journal, lines: &[String]) {
    std::fs::write(j.path(), lines.join("\n") + "\n").expect("write");
}

#[test]
fn appended_lines_chain_and_verify() {
    let (_dir, j) = journal_of(5);
    assert_eq!(verify(j.path()), Ok(5));
    let all = read(j.path()).expect("read");
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].prev, GENESIS);
    assert_eq!(all[3].seq, 4);
    assert_eq!(all[4].prev, all[3].hash);
    assert_eq!(all[2].site.as_deref(), Some("shop"));
    let mode = std::fs::metadata(j.path()).expect("meta").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn an_edited_line_is_named() {
    let (_dir, j) = journal_of(4);
    let mut all = lines(&j);
    all[2] = all[2].replace("p/2", "p/9");
    write(&j, &all);
    let problem = verify(j.path()).expect_err("edited");
    assert_eq!(problem.line, 3, "{problem}");
    assert!(problem.why.contains("edited"), "{problem}");
}

#[test]
fn a_removed_line_is_named() {
    let (_dir, j) = journal_of(4);
    let mut all = lines(&j);
    all.remove(1);
    write(&j, &all);
    let problem = verify(j.path()).expect_err("removed");
    assert_eq!(problem.line, 2, "{problem}");
    assert!(problem.why.contains("removed or moved"), "{problem}");
    // The first line gone: the chain no longer starts at 1.
    let (_dir2, j2) = journal_of(3);
    let mut all = lines(&j2);
    all.remove(0);
    write(&j2, &all);
    assert_eq!(verify(j2.path()).expect_err("first removed").line, 1);
}

#[test]
fn a_reordered_line_is_named() {
    let (_dir, j) = journal_of(4);
    let mut all = lines(&j);
    all.swap(1, 2);
    write(&j, &all);
    let problem = verify(j.path()).expect_err("reordered");
    assert_eq!(problem.line, 2, "{problem}");
}

#[test]
fn a_cut_short_last_line_is_found_and_nothing_is_appended_after_it() {
    let (_dir, j) = journal_of(2);
    let text = std::fs::read_to_string(j.path()).expect("read");
    std::fs::write(j.path(), &text[..text.len() - 20]).expect("cut");
    assert_eq!(verify(j.path()).expect_err("cut").line, 2);
    let e = j.append(event(9)).expect_err("broken journal");
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[test]
fn writers_in_several_threads_keep_one_chain() {
    let (_dir, j) = journal_of(1);
    std::thread::scope(|s| {
        for t in 0..4 {
            let j = j.clone();
            s.spawn(move || {
                for i in 0..25 {
                    j.append(event(t * 100 + i)).expect("append");
                }
            });
        }
    });
    assert_eq!(verify(j.path()), Ok(101));
}

#[test]
fn a_journal_others_can_read_is_refused() {
    let (_dir, j) = journal_of(1);
    std::fs::set_permissions(
        j.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    let e = j.append(event(1)).expect_err("open to others");
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[test]
fn a_long_detail_is_cut_and_still_verifies() {
    let (_dir, j) = journal_of(0);
    let mut e = event(0);
    e.detail = "é".repeat(2000);
    let entry = j.append(e).expect("append");
    assert!(entry.detail.len() <= 1024 + '…'.len_utf8());
    assert_eq!(verify(j.path()), Ok(1));
}
