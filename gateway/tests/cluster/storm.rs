//! A restart storm: every client of one node reconnects at once (the node
//! died) and resumes on the others.

use crate::client::{assert_clean, start_chat, Party};
use crate::harness::{bounded, Cluster};
use futures_util::future::join_all;
use std::time::Duration;

const CUSTOMERS: usize = 200;

#[actix_rt::test]
async fn every_client_of_a_killed_node_resumes_elsewhere() {
    let mut cluster = Cluster::start(3).await;
    bounded(Duration::from_secs(180), async {
        let nodes = cluster.urls();
        // Chats started through every node, every customer on n1.
        let mut customers = Vec::with_capacity(CUSTOMERS);
        for chunk in (0..CUSTOMERS).collect::<Vec<_>>().chunks(20) {
            let started = join_all(chunk.iter().map(|n| {
                let base = nodes[n % 3].clone();
                async move {
                    start_chat(
                        &base,
                        "support",
                        &format!("Customer {n}"),
                        &format!("hello {n}"),
                    )
                    .await
                }
            }))
            .await;
            let connected = join_all(
                started
                    .into_iter()
                    .map(|(id, token)| Party::customer_with_token(&nodes, 0, id, token)),
            )
            .await;
            customers.extend(connected);
        }
        for customer in &customers {
            let id = customer.conversation();
            assert_eq!(customer.transcript(id).contiguous(), 1, "{id}");
        }

        cluster.nodes[0].kill9();
        // All at once: each notices its socket closed and reconnects to
        // n2 or n3, resumes, and sends a message.
        let results = join_all(
            customers
                .iter_mut()
                .enumerate()
                .map(|(n, customer)| async move {
                    customer.reconnect_to(1 + n % 2).await;
                    let id = customer.conversation().to_owned();
                    let seq = customer.say(&id, &format!("after the storm {n}")).await;
                    customer.wait_seq(&id, seq, Duration::from_secs(30)).await;
                    seq
                }),
        )
        .await;
        for (customer, seq) in customers.iter().zip(&results) {
            let id = customer.conversation();
            assert_eq!(*seq, 2, "{id}: the second message is seq 2");
            assert_eq!(
                customer.transcript(id).missing(*seq),
                Vec::<u64>::new(),
                "{id}"
            );
        }
        let all: Vec<&Party> = customers.iter().collect();
        assert_clean(&all);
        // The queue lost none of them.
        let (status, queues) = crate::client::get(
            &nodes[1],
            "/api/v1/queues",
            Some(&crate::client::supervisor()),
        )
        .await;
        assert_eq!(status, 200, "{queues}");
        let support = queues
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["id"] == "support").cloned())
            .expect("support listed");
        assert_eq!(support["waiting"], CUSTOMERS as u64, "{support}");
    })
    .await;
}
