//! The object stores of the replica tests (tests/common/s3.rs), checked
//! against themselves: that moto really enforces the conditional writes the
//! S3 store builds on (`If-None-Match: *` and `If-Match: <etag>` on
//! PutObject), that the raw helpers and pause/resume work, and that the
//! naive endpoint serves objects while ignoring every condition.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::refupstream::{http_request, http_request_timeout};
use common::s3::{MOTO_AUTH, NaiveS3, S3Server, xml_elements};

const BUCKET: &str = "harness";

/// MD5("hello") — moto's ETag for that body is its quoted MD5.
const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";

fn moto() -> S3Server {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    s3
}

#[test]
fn moto_refuses_a_create_over_an_existing_key() {
    let s3 = moto();
    let key = "versions/example.com/m/@v/v1.0.0.mod.json";
    let create =
        |body: &[u8]| s3.object_request("PUT", BUCKET, key, &[("If-None-Match", "*")], Some(body));

    let first = create(b"hello");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.header("etag"),
        Some(format!("\"{HELLO_MD5}\"").as_str())
    );

    let second = create(b"someone else's");
    assert_eq!(second.status, 412, "{}", second.text());
    let xml = second.text();
    assert_eq!(xml_elements(&xml, "Code"), ["PreconditionFailed"]);
    assert_eq!(xml_elements(&xml, "Condition"), ["If-None-Match"]);
    assert_eq!(s3.get_object(BUCKET, key).as_deref(), Some(&b"hello"[..]));

    // The 412 was the condition's doing: without it the write goes through.
    s3.put_object(BUCKET, key, b"overwritten");
    assert_eq!(
        s3.get_object(BUCKET, key).as_deref(),
        Some(&b"overwritten"[..])
    );
}

#[test]
fn moto_refuses_a_swap_from_a_stale_etag() {
    let s3 = moto();
    let key = "trust/sum.golang.org/latest";
    let e1 = s3.put_object(BUCKET, key, b"tree 1");
    let swap = |etag: &str, body: &[u8]| {
        s3.object_request("PUT", BUCKET, key, &[("If-Match", etag)], Some(body))
    };

    let wrong = swap("\"00000000000000000000000000000000\"", b"tree 2");
    assert_eq!(wrong.status, 412, "{}", wrong.text());
    assert_eq!(xml_elements(&wrong.text(), "Code"), ["PreconditionFailed"]);
    assert_eq!(xml_elements(&wrong.text(), "Condition"), ["If-Match"]);
    assert_eq!(s3.get_object(BUCKET, key).as_deref(), Some(&b"tree 1"[..]));

    let ok = swap(&e1, b"tree 2");
    assert_eq!(ok.status, 200, "{}", ok.text());
    let e2 = ok.header("etag").unwrap().to_string();
    assert_ne!(e1, e2);
    assert_eq!(s3.get_object(BUCKET, key).as_deref(), Some(&b"tree 2"[..]));

    // A second writer still holding the first ETag loses.
    let stale = swap(&e1, b"tree 2 by another replica");
    assert_eq!(stale.status, 412, "{}", stale.text());
    assert_eq!(s3.get_object(BUCKET, key).as_deref(), Some(&b"tree 2"[..]));

    // If-Match on a key that does not exist: 404 NoSuchKey, as on AWS.
    let missing = s3.object_request(
        "PUT",
        BUCKET,
        "trust/other.example/latest",
        &[("If-Match", &e1)],
        Some(b"x"),
    );
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(xml_elements(&missing.text(), "Code"), ["NoSuchKey"]);
    assert_eq!(s3.get_object(BUCKET, "trust/other.example/latest"), None);
}

#[test]
fn moto_raw_helpers_round_trip_keys_of_every_layout_kind() {
    let s3 = moto();
    let keys = [
        "audit/replica-a/000001.seg",
        "blobs/sha256/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "pins/example.com/!private/lib@v1.2.3/zip",
        "versions/example.com/!private/lib/@v/v1.2.3+incompatible.mod.json",
        "versions/example.com/!private/lib/@v/v1.2.3.info.json",
        "versions/example.com/other/@v/v0.0.0-20260101000000-abcdefabcdef.zip.json",
    ];
    for (i, k) in keys.iter().enumerate() {
        let etag = s3.put_object(BUCKET, k, format!("object {i}").as_bytes());
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34);
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            s3.get_object(BUCKET, k),
            Some(format!("object {i}").into_bytes()),
            "{k}"
        );
    }
    assert_eq!(s3.list(BUCKET, ""), keys);
    assert_eq!(
        s3.list(BUCKET, "versions/example.com/!private/"),
        keys[3..5]
    );
    assert_eq!(s3.list(BUCKET, "nothing/"), Vec::<String>::new());

    s3.delete_object(BUCKET, keys[1]);
    assert_eq!(s3.get_object(BUCKET, keys[1]), None);
    s3.delete_object(BUCKET, keys[1]); // deleting what is gone is no error
    assert_eq!(s3.list(BUCKET, "blobs/"), Vec::<String>::new());

    // Why the helpers send an Authorization header: anonymous requests for
    // an existing private object are 403, even reads.
    let url = format!("{}/{BUCKET}/{}", s3.endpoint(), keys[0]);
    let anon = http_request("GET", &url, &[], None).unwrap();
    assert_eq!(anon.status, 403);
    let signed = http_request("GET", &url, &[("Authorization", MOTO_AUTH)], None).unwrap();
    assert_eq!(signed.status, 200);

    // env() is what a replica needs.
    let env = s3.env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(s3.endpoint().as_str()));
    assert_eq!(get("AWS_ALLOW_HTTP"), Some("true"));
    assert_eq!(get("AWS_REGION"), Some("us-east-1"));
    assert!(get("AWS_ACCESS_KEY_ID").is_some() && get("AWS_SECRET_ACCESS_KEY").is_some());
}

#[test]
fn moto_paused_answers_nothing_until_resumed() {
    let s3 = moto();
    s3.put_object(BUCKET, "k", b"v");
    let url = format!("{}/{BUCKET}/k", s3.endpoint());
    let get =
        |timeout| http_request_timeout("GET", &url, &[("Authorization", MOTO_AUTH)], None, timeout);
    s3.pause();
    let e = get(Duration::from_secs(1)).expect_err("a stopped server answers");
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );
    s3.resume();
    let r = get(Duration::from_secs(30)).expect("answers after resume");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"v"[..]));
}

#[test]
fn naive_endpoint_ignores_conditional_writes() {
    let s3 = NaiveS3::start();
    let base = format!("{}/{BUCKET}", s3.endpoint());
    let req = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>| {
        http_request(method, &format!("{base}{path}"), headers, body).unwrap()
    };

    assert_eq!(req("PUT", "", &[], None).status, 200); // create bucket
    let probe = "/probe/replica-a-1234";
    let a = req("PUT", probe, &[("If-None-Match", "*")], Some(b"first"));
    let b = req("PUT", probe, &[("If-None-Match", "*")], Some(b"second"));
    assert_eq!((a.status, b.status), (200, 200), "both creates succeed");
    let (ea, eb) = (a.header("etag").unwrap(), b.header("etag").unwrap());
    assert!(
        ea.starts_with('"') && ea.ends_with('"') && ea.len() == 34,
        "{ea}"
    );
    assert_ne!(ea, eb);
    let c = req("PUT", probe, &[("If-Match", "\"stale\"")], Some(b"third"));
    assert_eq!(c.status, 200, "a swap from a wrong ETag succeeds");
    assert_eq!(
        s3.get_object(BUCKET, "probe/replica-a-1234").unwrap(),
        b"third"
    );
    // It saw the conditions and ignored them.
    let seen: Vec<_> = s3
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.target.starts_with("/harness/probe/"))
        .map(|r| {
            (
                r.header("if-none-match").map(String::from),
                r.header("if-match").map(String::from),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some("*".to_string()), None),
            (Some("*".to_string()), None),
            (None, Some("\"stale\"".to_string()))
        ]
    );

    // GET and HEAD carry what object_store needs: ETag, Last-Modified, Content-Length.
    let get = req("GET", probe, &[], None);
    assert_eq!((get.status, get.body.as_slice()), (200, &b"third"[..]));
    let head = req("HEAD", probe, &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_eq!(head.header("content-length"), Some("5"));
    assert!(httpdate::parse_http_date(head.header("last-modified").unwrap()).is_ok());
    assert!(head.body.is_empty());
    let part = req("GET", probe, &[("Range", "bytes=1-3")], None);
    assert_eq!((part.status, part.body.as_slice()), (206, &b"hir"[..]));
    assert_eq!(part.header("content-range"), Some("bytes 1-3/5"));

    // Percent-escaped keys are stored decoded.
    let k = "/versions/example.com/%21private/lib/%40v/v1.0.0%2Bincompatible.mod.json";
    assert_eq!(req("PUT", k, &[], Some(b"meta")).status, 200);
    assert_eq!(
        s3.get_object(
            BUCKET,
            "versions/example.com/!private/lib/@v/v1.0.0+incompatible.mod.json"
        ),
        Some(b"meta".to_vec())
    );
    s3.put_object(
        BUCKET,
        "versions/example.com/other/@v/v2.0.0.zip.json",
        b"z",
    );

    // ListObjectsV2: prefix, delimiter, pagination.
    let list = req("GET", "?list-type=2&prefix=versions%2F", &[], None);
    assert_eq!(list.status, 200);
    assert_eq!(
        xml_elements(&list.text(), "Key"),
        [
            "versions/example.com/!private/lib/@v/v1.0.0+incompatible.mod.json",
            "versions/example.com/other/@v/v2.0.0.zip.json"
        ]
    );
    assert_eq!(xml_elements(&list.text(), "KeyCount"), ["2"]);
    assert_eq!(xml_elements(&list.text(), "Size"), ["4", "1"]);
    let last_modified = &xml_elements(&list.text(), "LastModified")[0];
    assert!(
        last_modified.len() == 24
            && last_modified.ends_with('Z')
            && last_modified.as_bytes()[10] == b'T',
        "{last_modified}"
    );
    let dirs = req(
        "GET",
        "?list-type=2&prefix=versions/example.com/&delimiter=/",
        &[],
        None,
    );
    assert_eq!(
        xml_elements(&dirs.text(), "Prefix"),
        [
            "versions/example.com/",
            "versions/example.com/!private/",
            "versions/example.com/other/"
        ]
    );
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let mut q = "?list-type=2&max-keys=1".to_string();
        if !token.is_empty() {
            q.push_str(&format!(
                "&continuation-token={}",
                common::refupstream::query_escape(&token)
            ));
        }
        let page = req("GET", &q, &[], None).text();
        let page_keys = xml_elements(&page, "Key");
        assert!(page_keys.len() <= 1);
        keys.extend(page_keys);
        match xml_elements(&page, "NextContinuationToken").pop() {
            Some(t) => token = t,
            None => break,
        }
    }
    assert_eq!(keys, s3.list(BUCKET, ""));
    assert_eq!(keys.len(), 3);

    // DELETE, then the object is gone; HEAD of a missing key has no body.
    assert_eq!(req("DELETE", probe, &[], None).status, 204);
    let gone = req("GET", probe, &[], None);
    assert_eq!(gone.status, 404);
    assert_eq!(xml_elements(&gone.text(), "Code"), ["NoSuchKey"]);
    assert_eq!(req("HEAD", probe, &[], None).status, 404);
}

/// Two requests on one kept-alive connection, then a DeleteObjects POST:
/// the exchange a pooling client (object_store's reqwest) has with it.
#[test]
fn naive_endpoint_keeps_connections_alive_and_deletes_in_bulk() {
    let s3 = NaiveS3::start();
    let host = s3.endpoint().trim_start_matches("http://").to_string();
    let mut conn = TcpStream::connect(&host).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut exchange = |req: String| -> (u16, Vec<u8>) {
        conn.write_all(req.as_bytes()).unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut len = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        (
            status.split_whitespace().nth(1).unwrap().parse().unwrap(),
            body,
        )
    };
    let put = |k: &str, v: &str| {
        format!(
            "PUT /b/{k} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{v}",
            v.len()
        )
    };
    assert_eq!(exchange(put("a", "1")).0, 200);
    // A chunked upload on the same connection.
    let chunked = format!(
        "PUT /b/c HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    );
    assert_eq!(exchange(chunked).0, 200);
    assert_eq!(s3.get_object("b", "c"), Some(b"abcde".to_vec()));
    assert_eq!(
        exchange(format!("GET /b/a HTTP/1.1\r\nHost: {host}\r\n\r\n")),
        (200, b"1".to_vec())
    );
    let delete = "<Delete><Object><Key>a</Key></Object><Object><Key>c</Key></Object></Delete>";
    let (status, body) = exchange(format!(
        "POST /b?delete HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{delete}",
        delete.len()
    ));
    assert_eq!(status, 200);
    assert_eq!(
        xml_elements(&String::from_utf8(body).unwrap(), "Key"),
        ["a", "c"]
    );
    assert_eq!(s3.list("b", ""), Vec::<String>::new());
    assert_eq!(s3.requests().len(), 4);
}
