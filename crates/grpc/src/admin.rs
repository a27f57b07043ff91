//! `RaftAdmin`: status and membership changes.

use std::sync::Arc;

use brisk_proto::raft_admin_server::RaftAdmin;
use brisk_proto::*;
use brisk_service::Service;
use tonic::{Request, Response, Status};

use crate::{origin, status_of};

pub struct AdminService {
    pub service: Arc<Service>,
}

#[tonic::async_trait]
impl RaftAdmin for AdminService {
    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.service.status()))
    }

    async fn configuration(
        &self,
        req: Request<ConfigurationRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let c = self
            .service
            .configuration(origin(&req))
            .await
            .map_err(status_of)?;
        Ok(Response::new(c))
    }

    async fn add_learner(
        &self,
        req: Request<AddLearnerRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let c = self
            .service
            .add_learner(from, r.id, r.addr, r.peer_addr)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c))
    }

    async fn add_voter(
        &self,
        req: Request<AddVoterRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let c = self
            .service
            .add_voter(from, r.id, r.addr, r.peer_addr)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c))
    }

    async fn remove_server(
        &self,
        req: Request<RemoveServerRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let from = origin(&req);
        let c = self
            .service
            .remove_member(from, req.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c))
    }

    async fn transfer_leadership(
        &self,
        req: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipResponse>, Status> {
        let from = origin(&req);
        let leader_id = self
            .service
            .transfer_leadership(from, req.into_inner().to)
            .await
            .map_err(status_of)?;
        Ok(Response::new(TransferLeadershipResponse { leader_id }))
    }

    async fn snapshot(
        &self,
        _req: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotResponse>, Status> {
        let s = self.service.snapshot().await.map_err(status_of)?;
        Ok(Response::new(SnapshotResponse {
            index: s.index.get(),
            term: s.term,
        }))
    }
}
