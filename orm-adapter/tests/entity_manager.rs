//! The entity manager against an embedded database: identity map, dirty
//! checking (read back from the change log), flush atomicity across
//! collections, dependency order, optimistic locking, populate query counts,
//! cascades, fork isolation, transactional, generated keys, repositories.

mod common;

use collection_store::typed::{Filter, RelationKind};
use collection_store::{Document, OpKind};
use collection_store_orm::{Managed, OrmError, Query, Ref};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_map_one_instance_no_second_query() {
    let fx = Fx::new();
    fx.seed(3, 2);
    let em = fx.em();
    let a = em.find_by_id::<Author>(&1).await.unwrap().unwrap();
    let gets = fx.driver.calls().gets;
    // A second find_by_id costs no query and returns the same instance.
    let b = em.find_by_id::<Author>(&1).await.unwrap().unwrap();
    assert!(Managed::ptr_eq(&a, &b));
    assert_eq!(fx.driver.calls().gets, gets);
    // Queries still run, but return the loaded instance (not a copy).
    a.write().name = "changed in memory".into();
    let all = em.find::<Author>(Query::all()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(Managed::ptr_eq(&all[0], &a));
    assert_eq!(all[0].read().name, "changed in memory");
    // Missing ids are looked up each time (and found missing).
    assert!(em.find_by_id::<Author>(&99).await.unwrap().is_none());
    assert_eq!(em.managed_count(), 3);
    assert!(em.contains(&a));
    assert!(!em.fork().contains(&a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_checking_writes_only_changed_paths() {
    let fx = Fx::new();
    fx.seed(3, 1);
    let em = fx.em();
    let authors = em.find::<Author>(Query::all()).await.unwrap();
    // Touched but unchanged, changed and changed back: nothing to write.
    drop(authors[1].write());
    {
        let mut w = authors[2].write();
        w.name = "x".into();
        w.name = "Author 3".into();
    }
    let before = fx.lsn();
    assert_eq!(em.flush().await.unwrap(), Default::default());
    assert_eq!(fx.lsn(), before, "a flush without changes writes nothing");
    assert_eq!(fx.driver.calls().batches, 0);

    // Someone else changes the name behind the entity manager's back…
    fx.db
        .typed::<Author>()
        .unwrap()
        .update_one(
            Author::fields().id().eq(1),
            collection_store::typed::Update::new()
                .set(Author::fields().name(), "Renamed elsewhere"),
        )
        .unwrap();
    let before = fx.lsn();
    // …while this context changes one nested field and sets an optional one.
    {
        let mut a = authors[0].write();
        a.address.city = "Bergen".into();
        a.nickname = Some("Ace".into());
    }
    let report = em.flush().await.unwrap();
    assert_eq!(report.updated, 1);
    let ops = fx.ops_since(before);
    assert_eq!(fx.entries_since(before), 1, "one flush, one transaction");
    assert_eq!(ops.len(), 1, "{ops:?}");
    let (kind, coll, image) = &ops[0];
    assert_eq!((*kind, coll.as_str()), (OpKind::Update, "authors"));
    // Only `address.city` and `nickname` were written: the concurrent rename survives.
    assert_eq!(image["name"], json!("Renamed elsewhere"));
    assert_eq!(image["address"], json!({"city": "Bergen", "zip": "0001"}));
    assert_eq!(image["nickname"], json!("Ace"));

    // Unsetting an optional field (serialized as null here) and the next flush
    // diffs against what the last one wrote.
    authors[0].write().nickname = None;
    let before = fx.lsn();
    em.flush().await.unwrap();
    let ops = fx.ops_since(before);
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].2["nickname"], json!(null));
    assert_eq!(ops[0].2["address"]["city"], json!("Bergen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flush_is_one_transaction_across_collections_in_dependency_order() {
    let fx = Fx::new();
    fx.seed(1, 1);
    let em = fx.em();
    let before = fx.lsn();
    // A post referencing a new author, persisted before the author: the
    // author is inserted first all the same.
    em.persist(post(900, 77)).unwrap();
    em.persist(author(77)).unwrap();
    let a1 = em.find_by_id::<Author>(&1).await.unwrap().unwrap();
    a1.write().name = "Ann".into();
    let c = em.find_one::<Comment>(Query::all()).await.unwrap().unwrap();
    em.remove(&c).unwrap();
    let report = em.flush().await.unwrap();
    assert_eq!((report.inserted, report.updated, report.deleted), (2, 1, 1));
    assert_eq!(fx.entries_since(before), 1);
    let ops: Vec<_> = fx
        .ops_since(before)
        .into_iter()
        .map(|(k, c, _)| (k, c))
        .collect();
    assert_eq!(
        ops,
        vec![
            (OpKind::Insert, "authors".to_owned()),
            (OpKind::Insert, "posts".to_owned()),
            (OpKind::Update, "authors".to_owned()),
            (OpKind::Delete, "comments".to_owned()),
        ]
    );
    // The inserted versioned post got version 1, in the store and in memory.
    let p = em.find_by_id::<Post>(&900).await.unwrap().unwrap();
    assert_eq!(p.read().version, 1);
    assert_eq!(
        fx.db
            .typed::<Post>()
            .unwrap()
            .get(&900)
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_statement_in_the_middle_leaves_nothing() {
    let fx = Fx::new();
    fx.seed(2, 1);
    let em = fx.em();
    let a1 = em.find_by_id::<Author>(&1).await.unwrap().unwrap();
    a1.write().name = "changed".into();
    em.persist(post(500, 1)).unwrap();
    // Duplicate unique email: the second insert fails at flush.
    let mut dup = author(3);
    dup.email = "a2@example.com".into();
    em.persist(dup).unwrap();
    em.persist(author(4)).unwrap();
    let p = em.find_by_id::<Post>(&101).await.unwrap().unwrap();
    em.remove(&p).unwrap();
    let before = fx.lsn();
    let err = em.flush().await.unwrap_err();
    match &err {
        OrmError::Statement {
            what,
            collection,
            source,
            ..
        } => {
            assert_eq!((*what, collection.as_str()), ("insert", "authors"));
            assert!(matches!(
                **source,
                collection_store::Error::DuplicateKey { .. }
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fx.lsn(), before, "nothing committed");
    let raw = fx.db.typed::<Author>().unwrap();
    assert_eq!(raw.get(&1).unwrap().unwrap().name, "Author 1");
    assert!(raw.get(&4).unwrap().is_none());
    assert!(fx.db.typed::<Post>().unwrap().get(&500).unwrap().is_none());
    assert!(fx.db.typed::<Post>().unwrap().get(&101).unwrap().is_some());
    // The context still holds the work: fixing the bad entity lets it through.
    let bad = em.find_by_id::<Author>(&3).await.unwrap().unwrap();
    bad.write().email = "a3@example.com".into();
    let report = em.flush().await.unwrap();
    assert_eq!((report.inserted, report.updated), (3, 1));
    assert!(report.deleted >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimistic_lock_conflicts_write_nothing() {
    let fx = Fx::new();
    fx.seed(1, 2);
    let em1 = fx.em();
    let em2 = fx.em();
    let p1 = em1.find_by_id::<Post>(&101).await.unwrap().unwrap();
    let p2 = em2.find_by_id::<Post>(&101).await.unwrap().unwrap();
    assert!(!Managed::ptr_eq(&p1, &p2));
    p1.write().title = "first".into();
    assert_eq!(em1.flush().await.unwrap().updated, 1);
    assert_eq!(p1.read().version, 2);

    // em2's copy is stale: its flush fails with a typed error and writes
    // nothing, not even its other, unrelated change.
    let other = em2.find_by_id::<Author>(&1).await.unwrap().unwrap();
    other.write().name = "unrelated".into();
    p2.write().title = "second".into();
    let before = fx.lsn();
    match em2.flush().await.unwrap_err() {
        OrmError::OptimisticLock {
            collection,
            id,
            expected,
        } => assert_eq!(
            (collection.as_str(), id.as_str(), expected),
            ("posts", "101", 1)
        ),
        e => panic!("{e:?}"),
    }
    assert_eq!(fx.lsn(), before);
    let stored = fx.db.typed::<Post>().unwrap().get(&101).unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.version), ("first", 2));
    assert_eq!(
        fx.db
            .typed::<Author>()
            .unwrap()
            .get(&1)
            .unwrap()
            .unwrap()
            .name,
        "Author 1"
    );

    // Removing a stale versioned entity fails the same way.
    let em3 = fx.em();
    let q = em3.find_by_id::<Post>(&102).await.unwrap().unwrap();
    let em4 = fx.em();
    em4.find_by_id::<Post>(&102)
        .await
        .unwrap()
        .unwrap()
        .write()
        .body = "x".into();
    em4.flush().await.unwrap();
    em3.remove(&q).unwrap();
    assert!(matches!(
        em3.flush().await.unwrap_err(),
        OrmError::OptimisticLock { expected: 1, .. }
    ));
    // An unversioned entity deleted elsewhere is reported missing.
    let em5 = fx.em();
    let a = em5.find_by_id::<Author>(&1).await.unwrap().unwrap();
    fx.db.typed::<Author>().unwrap().delete(&1).unwrap();
    a.write().name = "ghost".into();
    assert!(matches!(
        em5.flush().await.unwrap_err(),
        OrmError::Missing { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populate_is_one_query_per_relation_level() {
    let fx = Fx::new();
    fx.seed(5, 4);
    let em = fx.em();
    let comments = em.find::<Comment>(Query::all()).await.unwrap();
    assert_eq!(comments.len(), 20);
    let start = fx.driver.calls();
    let posts = em
        .populate(&comments, Comment::fields().post())
        .await
        .unwrap();
    let authors = em.populate(&posts, Post::fields().author()).await.unwrap();
    let calls = fx.driver.calls();
    assert_eq!(
        calls.reads() - start.reads(),
        2,
        "one query per level, no N+1"
    );
    assert_eq!((posts.len(), authors.len()), (20, 5));
    // References now resolve without a query.
    for c in &comments {
        let p = em.resolve(&c.read().post).unwrap();
        let a = em.resolve(&p.read().author).unwrap();
        assert_eq!(p.read().id / 100, a.read().id);
    }
    assert_eq!(fx.driver.calls().reads(), calls.reads());
    // Populating again costs nothing: everything is loaded.
    em.populate(&comments, Comment::fields().post())
        .await
        .unwrap();
    assert_eq!(fx.driver.calls().reads(), calls.reads());

    // One-to-many: every author's posts with one query.
    let em = fx.em();
    let authors = em.find::<Author>(Query::all()).await.unwrap();
    let before = fx.driver.calls().reads();
    let posts = em
        .populate_inverse(&authors, Post::fields().author())
        .await
        .unwrap();
    assert_eq!(fx.driver.calls().reads() - before, 1);
    assert_eq!(posts.len(), 20);
    for a in &authors {
        assert_eq!(posts.of(a).len(), 4);
        assert!(posts
            .of(a)
            .iter()
            .all(|p| p.read().author == Ref::new(a.read().id)));
    }

    // A Vec<Ref<T>> field: one query for all the tags.
    let em = fx.em();
    fx.db
        .typed::<Tag>()
        .unwrap()
        .insert_many(&[
            Tag {
                name: "rust".into(),
            },
            Tag { name: "db".into() },
        ])
        .unwrap();
    let ps = em.find::<Post>(Query::all().limit(3)).await.unwrap();
    for p in &ps {
        p.write().tags = vec![Ref::new("rust".into()), Ref::new("db".into())];
    }
    em.flush().await.unwrap();
    let before = fx.driver.calls().reads();
    let tags = em.populate(&ps, Post::fields().tags()).await.unwrap();
    assert_eq!(fx.driver.calls().reads() - before, 1);
    assert_eq!(
        tags.iter()
            .map(|t| t.read().name.clone())
            .collect::<Vec<_>>(),
        ["rust", "db"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascades_follow_the_declarations() {
    // The metadata the derive recorded.
    let rels = Post::relations();
    assert_eq!(rels.len(), 3);
    assert_eq!(
        (rels[0].name, rels[0].kind, rels[0].target),
        ("author", RelationKind::ManyToOne, "authors")
    );
    assert!(rels[0].cascade.persist && !rels[0].cascade.remove);
    assert_eq!(
        (rels[1].name, rels[1].kind, rels[1].path.as_str()),
        ("tags", RelationKind::ManyToOne, "tags")
    );
    assert!(!rels[1].cascade.persist);
    assert_eq!(
        (
            rels[2].name,
            rels[2].kind,
            rels[2].target,
            rels[2].path.as_str()
        ),
        ("comments", RelationKind::OneToMany, "comments", "post")
    );
    assert_eq!(Post::VERSION_FIELD, Some("version"));
    assert_eq!(Author::VERSION_FIELD, None);

    let fx = Fx::new();
    fx.seed(2, 3);
    let em = fx.em();
    // Cascade persist: a new author attached to a post's reference is inserted too.
    let ann = Managed::new(author(50));
    let mut p = post(5000, 0);
    p.author = Ref::to(&ann).unwrap();
    em.persist(p).unwrap();
    // Comment.post is declared without cascade: an attached new post is not persisted.
    let orphan = Managed::new(post(6000, 1));
    em.persist(Comment {
        id: None,
        post: Ref::to(&orphan).unwrap(),
        text: "x".into(),
    })
    .unwrap();
    let report = em.flush().await.unwrap();
    assert_eq!(report.inserted, 3);
    assert!(em.contains(&ann));
    assert!(fx.db.typed::<Author>().unwrap().get(&50).unwrap().is_some());
    assert!(fx.db.typed::<Post>().unwrap().get(&6000).unwrap().is_none());

    // Cascade remove: author 1 → their 3 posts → each post's comment, in one transaction.
    let em = fx.em();
    let a1 = em.find_by_id::<Author>(&1).await.unwrap().unwrap();
    let loaded_post = em.find_by_id::<Post>(&101).await.unwrap().unwrap();
    em.remove(&a1).unwrap();
    let before = fx.lsn();
    let report = em.flush().await.unwrap();
    assert_eq!(report.deleted, 1 + 3 + 3);
    assert_eq!(fx.entries_since(before), 1);
    assert_eq!(
        fx.db
            .typed::<Post>()
            .unwrap()
            .count(Post::fields().author().eq(Ref::<Author>::new(1)))
            .unwrap(),
        0
    );
    assert_eq!(
        fx.db
            .typed::<Comment>()
            .unwrap()
            .count(Filter::all())
            .unwrap(),
        3 + 1
    );
    // Cascade-deleted entities leave the identity map.
    assert!(!em.contains(&loaded_post));
    assert!(em.find_by_id::<Post>(&101).await.unwrap().is_none());
    // Author 2's posts are untouched.
    assert_eq!(
        fx.db.typed::<Post>().unwrap().count(Filter::all()).unwrap(),
        3 + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_are_isolated() {
    let fx = Fx::new();
    fx.seed(1, 0);
    let em = fx.em();
    let fork = em.fork();
    let a = em.find_by_id::<Author>(&1).await.unwrap().unwrap();
    let b = fork.find_by_id::<Author>(&1).await.unwrap().unwrap();
    assert!(!Managed::ptr_eq(&a, &b));
    a.write().name = "in em".into();
    assert_eq!(b.read().name, "Author 1");
    fork.persist(author(2)).unwrap();
    assert_eq!(em.managed_count(), 1);
    // Flushing the fork writes only the fork's work.
    assert_eq!(fork.flush().await.unwrap().inserted, 1);
    assert_eq!(
        fx.db
            .typed::<Author>()
            .unwrap()
            .get(&1)
            .unwrap()
            .unwrap()
            .name,
        "Author 1"
    );
    assert_eq!(em.flush().await.unwrap().updated, 1);
    // clear() forgets everything: the next find reloads.
    em.clear();
    let gets = fx.driver.calls().gets;
    let again = em.find_by_id::<Author>(&1).await.unwrap().unwrap();
    assert!(!Managed::ptr_eq(&a, &again));
    assert_eq!(fx.driver.calls().gets, gets + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_commits_at_the_end_or_not_at_all() {
    let fx = Fx::new();
    fx.seed(1, 2);
    let em = fx.em();
    // Success: the closure's work is flushed once, at the end.
    let before = fx.lsn();
    let n = em
        .transactional(async |em| {
            let p = em.find_by_id::<Post>(&101).await?.unwrap();
            p.write().title = "t".into();
            em.persist(author(9))?;
            Ok(7)
        })
        .await
        .unwrap();
    assert_eq!(n, 7);
    assert_eq!(fx.entries_since(before), 1);
    // Failure: nothing is written.
    let before = fx.lsn();
    let err = em
        .transactional(async |em| {
            em.persist(author(10))?;
            Err::<(), _>(OrmError::NotManaged("give up".into()))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, OrmError::NotManaged(_)));
    assert_eq!(fx.lsn(), before);
    // Read validation: a versioned entity read (not changed) inside the
    // transaction and changed elsewhere before the commit fails it.
    let res = em
        .transactional(async |em| {
            let p = em.find_by_id::<Post>(&102).await?.unwrap();
            let v = p.read().version;
            let other = fx.em();
            other.find_by_id::<Post>(&102).await?.unwrap().write().body = "elsewhere".into();
            other.flush().await?;
            em.persist(author(11))?;
            Ok(v)
        })
        .await;
    assert!(
        matches!(res, Err(OrmError::OptimisticLock { expected: 1, .. })),
        "{res:?}"
    );
    assert!(fx.db.typed::<Author>().unwrap().get(&11).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_keys_persist_and_remove() {
    let fx = Fx::new();
    fx.seed(1, 1);
    let em = fx.em();
    let c = em
        .persist(Comment {
            id: None,
            post: Ref::new(101),
            text: "hi".into(),
        })
        .unwrap();
    let id = c.read().id.clone().unwrap();
    assert_eq!(id.len(), 24);
    // Found by its key before and after the flush, as the same instance.
    assert!(Managed::ptr_eq(
        &em.find_by_id::<Comment>(&id).await.unwrap().unwrap(),
        &c
    ));
    em.flush().await.unwrap();
    assert_eq!(
        fx.db
            .typed::<Comment>()
            .unwrap()
            .get(id.as_str())
            .unwrap()
            .unwrap()
            .text,
        "hi"
    );
    // Another instance with the same key is refused.
    let dup = Comment {
        id: Some(id.clone()),
        post: Ref::new(101),
        text: "dup".into(),
    };
    assert!(matches!(
        em.persist(dup),
        Err(OrmError::IdentityConflict { .. })
    ));
    // Removing a persisted, never flushed entity just forgets it.
    let tmp = em.persist(author(8)).unwrap();
    em.remove(&tmp).unwrap();
    // Removing what is not managed is refused.
    assert!(matches!(
        em.remove(&Managed::new(author(1))),
        Err(OrmError::NotManaged(_))
    ));
    em.remove(&c).unwrap();
    let report = em.flush().await.unwrap();
    assert_eq!((report.inserted, report.deleted), (0, 1));
    assert!(em.find_by_id::<Comment>(&id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_from_sea_query_and_typed_filters() {
    use sea_query::{Cond, Expr, ExprTrait, Order};
    let fx = Fx::new();
    fx.seed(6, 1);
    let em = fx.em();
    let by_cond = em
        .find::<Author>(
            Query::from(
                Cond::any()
                    .add(Expr::col(AuthorIden::Id).lte(2))
                    .add(Expr::col(AuthorIden::Email).like("a6@%")),
            )
            .order_by(AuthorIden::Id, Order::Desc),
        )
        .await
        .unwrap();
    assert_eq!(
        by_cond.iter().map(|a| a.read().id).collect::<Vec<_>>(),
        [6, 2, 1]
    );
    let mixed = Query::from(Author::fields().id().gt(1)).and_where(Expr::col(AuthorIden::Id).lt(4));
    assert_eq!(em.count(mixed).await.unwrap(), 2);
    let page = em
        .find::<Author>(
            Query::all()
                .sort(Author::fields().id().desc())
                .skip(1)
                .limit(2),
        )
        .await
        .unwrap();
    assert_eq!(page.iter().map(|a| a.read().id).collect::<Vec<_>>(), [5, 4]);
    let names = em
        .find_projected::<Author>(Author::fields().id().eq(3), json!({"name": 1}))
        .await
        .unwrap();
    assert_eq!(names, vec![json!({"id": 3, "name": "Author 3"})]);
    // An unsupported expression is a typed error naming it; nothing runs.
    let reads = fx.driver.calls().reads();
    let err = em
        .find::<Author>(Query::from(Expr::col(AuthorIden::Id).add(1).eq(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OrmError::UnsupportedExpression(m) if m.contains("Add")),
        "{err}"
    );
    assert_eq!(fx.driver.calls().reads(), reads);
    // A bad typed filter is the engine's typed error.
    let err = em
        .find::<Author>(Filter::raw(json!({"id": {"$bogus": 1}})))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        OrmError::Engine(collection_store::Error::InvalidFilter(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_conveniences() {
    let fx = Fx::new();
    fx.seed(4, 0);
    let em = fx.em();
    let repo = em.repository::<Author>();
    let f = Author::fields();
    {
        let a3 = repo.find_by_id(&3).await.unwrap().unwrap();
        a3.write().address.zip = "9999".into();
        let a2 = repo.find_by_id(&2).await.unwrap().unwrap();
        a2.write().address.city = "Bergen".into();
        let a4 = repo.find_by_id(&4).await.unwrap().unwrap();
        a4.write().address.city = "Bergen".into();
        em.flush().await.unwrap();
    }
    let id = |m: Option<Managed<Author>>| m.unwrap().read().id;
    assert_eq!(id(repo.first().await.unwrap()), 1);
    assert_eq!(id(repo.last().await.unwrap()), 4);
    assert_eq!(id(repo.lowest(&f.address().zip()).await.unwrap()), 1);
    assert_eq!(id(repo.greatest(&f.address().zip()).await.unwrap()), 3);
    assert_eq!(id(repo.oldest(&f.id()).await.unwrap()), 1);
    assert_eq!(id(repo.latest(&f.id()).await.unwrap()), 4);
    let bergen = repo.find_by(&f.address().city(), "Bergen").await.unwrap();
    assert_eq!(
        bergen.iter().map(|a| a.read().id).collect::<Vec<_>>(),
        [2, 4]
    );
    assert_eq!(
        id(repo
            .find_first_by(&f.address().city(), "Bergen")
            .await
            .unwrap()),
        2
    );
    assert_eq!(
        id(repo
            .find_last_by(&f.address().city(), "Bergen")
            .await
            .unwrap()),
        4
    );
    assert!(repo
        .find_first_by(&f.address().city(), "Nowhere")
        .await
        .unwrap()
        .is_none());
    assert_eq!(repo.find_all().await.unwrap().len(), 4);
    assert_eq!(repo.count(f.address().city().eq("Oslo")).await.unwrap(), 2);
    // Everything went through the identity map.
    assert!(Managed::ptr_eq(
        &repo.first().await.unwrap().unwrap(),
        &repo.find_by_id(&1).await.unwrap().unwrap()
    ));
}

#[test]
fn blocking_api_outside_a_runtime() {
    use collection_store_orm::Wait;
    let fx = Fx::new();
    fx.seed(2, 0);
    let em = fx.em();
    let a = em.find_by_id::<Author>(&2).wait().unwrap().unwrap();
    a.write().name = "blocking".into();
    assert_eq!(em.flush().wait().unwrap().updated, 1);
    assert_eq!(
        fx.db
            .typed::<Author>()
            .unwrap()
            .get(&2)
            .unwrap()
            .unwrap()
            .name,
        "blocking"
    );
}
