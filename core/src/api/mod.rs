//! `pgv2.percona.com/v2` kinds. (Owned by the API-types work; this is a placeholder so the
//! contract modules compile.)
