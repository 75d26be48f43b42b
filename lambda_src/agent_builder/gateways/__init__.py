"""AWS services other than DynamoDB: ECS, S3, EventBridge Scheduler, CloudWatch Logs."""
