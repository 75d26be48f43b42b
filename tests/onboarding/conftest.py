"""Fills one gap of moto's CloudFormation so a stack deletion behaves as it does in AWS.

moto 5.2's CloudFormation creates these EC2 and ECS resource types but has no delete for
them, so deleting a stack leaves the internet gateway attached, the VPC undeletable and the
cluster active. Real CloudFormation deletes all of them. The shim gives each a `delete` made
of moto's own backend calls; moto's stack deletion already retries in dependency order.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.ec2.models import ec2_backends
from moto.ec2.models.flow_logs import FlowLogs
from moto.ec2.models.internet_gateways import InternetGateway
from moto.ec2.models.route_tables import Route, RouteTable
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.ec2.models.vpn_gateway import VPCGatewayAttachment
from moto.ecs.models import Cluster, ecs_backends


def _backend(account_id: str, region_name: str) -> Any:
    return ec2_backends[account_id][region_name]


def _detach_gateway(self: VPCGatewayAttachment, account_id: str, region_name: str) -> None:
    _backend(account_id, region_name).detach_internet_gateway(self.gateway_id, self.vpc_id)


def _delete_gateway(self: InternetGateway, account_id: str, region_name: str) -> None:
    _backend(account_id, region_name).delete_internet_gateway(self.id)


def _delete_route(self: Route, account_id: str, region_name: str) -> None:
    backend = _backend(account_id, region_name)
    # moto may delete the route table first (it does not count routes as dependencies).
    if self.route_table.id in backend.route_tables:
        backend.delete_route(self.route_table.id, self.destination_cidr_block)


def _delete_route_table(self: RouteTable, account_id: str, region_name: str) -> None:
    _backend(account_id, region_name).delete_route_table(self.id)


def _delete_association(
    self: SubnetRouteTableAssociation, account_id: str, region_name: str
) -> None:
    _backend(account_id, region_name).subnet_associations.pop(
        f"{self.route_table_id}:{self.subnet_id}", None
    )


def _delete_flow_log(self: FlowLogs, account_id: str, region_name: str) -> None:
    _backend(account_id, region_name).delete_flow_logs([self.id])


def _delete_cluster(self: Cluster, account_id: str, region_name: str) -> None:
    ecs_backends[account_id][region_name].delete_cluster(self.arn)


@pytest.fixture(autouse=True)
def _cloudformation_deletes_networking(monkeypatch: pytest.MonkeyPatch) -> None:
    for model, delete in (
        (VPCGatewayAttachment, _detach_gateway),
        (InternetGateway, _delete_gateway),
        (Route, _delete_route),
        (RouteTable, _delete_route_table),
        (SubnetRouteTableAssociation, _delete_association),
        (FlowLogs, _delete_flow_log),
        (Cluster, _delete_cluster),
    ):
        assert "delete" not in vars(model), f"moto now deletes {model.__name__}: drop the shim"
        monkeypatch.setattr(model, "delete", delete, raising=False)
