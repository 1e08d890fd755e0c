//! Bot changes announced on one instance reach every instance.

use confab_domain::bot::BotId;
use futures::StreamExt;

use crate::helpers::{WAIT, two_instances};

#[tokio::test]
async fn bot_changes_announced_on_one_instance_reach_every_instance() {
    let (one, two) = two_instances().await;
    let mut on_one = one.bot_changes().await.unwrap();
    let mut on_two = two.bot_changes().await.unwrap();
    let helper = BotId::parse("helper").unwrap();
    let echo = BotId::parse("echo-2").unwrap();

    one.announce_bot_change(&helper).await.unwrap();
    one.announce_bot_change(&echo).await.unwrap();

    for stream in [&mut on_one, &mut on_two] {
        for expected in [&helper, &echo] {
            let bot = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("no bot change came in time")
                .expect("the stream ended");
            assert_eq!(&bot, expected);
        }
    }
}
