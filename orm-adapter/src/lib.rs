//! ORM-style layer over collection-store: repositories, an entity manager with identity map and unit of work, and filters from sea-query conditions will live here.
